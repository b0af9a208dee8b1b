//! The provider tests' scaffolding: the scripted fake server lives in the dev-only crate
//! `fakellm` (shared with the agent and assess end-to-end tests); what stays here is the
//! request these tests send.

#![allow(dead_code)] // Each provider module uses a different subset.

pub use fakellm::{FakeServer, Reply, config, gap};

/// A tool declaration with the schemars-style extras Gemini rejects.
pub fn grep_tool() -> llm::ToolDecl {
    llm::ToolDecl {
        name: "grep".into(),
        description: "Search the kernel tree.".into(),
        parameters: serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {"pattern": {"type": "string", "description": "regex"}},
            "required": ["pattern"],
            "additionalProperties": false
        }),
    }
}

pub fn request(messages: Vec<llm::Message>) -> llm::ChatRequest {
    llm::ChatRequest {
        system: "You judge KCSAN reports.".into(),
        messages,
        tools: vec![grep_tool()],
        temperature: Some(0.3),
        thinking: llm::ThinkingLevel::High,
        max_output_tokens: None,
        force_tool: None,
    }
}
