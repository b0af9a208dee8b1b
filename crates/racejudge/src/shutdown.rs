//! Clean shutdown of the long-running commands (`mcp`, `serve`).

/// A future resolving on ctrl-c (SIGINT) or SIGTERM, what MCP clients and service
/// managers send to stop a server.
///
/// The handlers are registered here, eagerly, not when the future is first polled: a signal that
/// arrives between this call and that poll would otherwise kill the process uncleanly (the
/// default action), e.g. one sent right after the `initialize` reply.
#[cfg(unix)]
pub fn signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
    })
}

#[cfg(not(unix))]
pub fn signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    Ok(async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    })
}
