//! SIGTERM and SIGINT for the binaries: the first asks for a clean stop, a second exits at once
//! (an operator who signals twice wants the process gone, not a graceful wait).

use tokio::signal::unix::{signal, Signal, SignalKind};

/// Resolves on the first SIGTERM or SIGINT. From then on a second one exits the process at
/// once, with status 130.
pub async fn first_then_exit_on_second(program: &'static str) {
    let (Ok(mut term), Ok(mut int)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot listen for SIGTERM or SIGINT; only SIGKILL stops this process");
        return std::future::pending().await;
    };
    let name = either(&mut term, &mut int).await;
    tracing::info!(signal = name, "shutting down; a second signal exits at once");
    tokio::task::spawn(async move {
        let name = either(&mut term, &mut int).await;
        eprintln!("{program}: a second {name}: exiting at once");
        std::process::exit(130);
    });
}

async fn either(term: &mut Signal, int: &mut Signal) -> &'static str {
    tokio::select! {
        biased; // a fixed order: see `client::node`
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
