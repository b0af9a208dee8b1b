//! Provider adapters driven through their real HTTP clients against scripted fake servers.
//! One test binary; one module per provider, plus configuration.

#[path = "common/mod.rs"]
mod common;

#[path = "providers/anthropic.rs"]
mod anthropic;
#[path = "providers/config.rs"]
mod config;
#[path = "providers/gemini.rs"]
mod gemini;
#[path = "providers/local.rs"]
mod local;
#[path = "providers/openai.rs"]
mod openai;
