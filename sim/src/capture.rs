//! What the real code logged during one seed. Error-level events fail the run unless the test
//! expects them; a few debug and info events mark recovery paths that the coverage counters
//! need and that only the runtime can see (a follower forwarding a call, a node following a
//! redirect). `SIM_LOG=<filter>` also prints the logs, for replaying a failing seed.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// Messages whose occurrences are counted, by the name the coverage report uses.
pub const COUNTED: &[(&str, &str)] = &[
    ("forward", "forwarding a call to the meta leader"),
    ("redirect", "redirected to the meta leader"),
    ("meta election won", "won the meta election"),
    ("storage fenced a leader out", "storage fenced this leader out; resigning"),
    ("etcd outcome unknown", "outcome unknown"),
];

/// Errors kept per seed at most; more are counted only.
const ERRORS_KEPT: usize = 20;

#[derive(Clone, Debug, Default)]
pub struct Captured {
    pub counts: [u64; COUNTED.len()],
    pub errors: Vec<String>,
    pub error_count: u64,
}

impl Captured {
    pub fn count(&self, name: &str) -> u64 {
        COUNTED.iter().position(|(n, _)| *n == name).map_or(0, |i| self.counts[i])
    }
}

#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Captured>>);

impl Capture {
    pub fn peek(&self) -> Captured {
        self.0.lock().expect("capture lock").clone()
    }

    pub fn take(&self) -> Captured {
        std::mem::take(&mut *self.0.lock().expect("capture lock"))
    }

    /// Installs this capture as the thread's subscriber until the guard drops.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let printed = std::env::var("SIM_LOG").ok().map(|filter| {
            tracing_subscriber::fmt::layer().with_filter(tracing_subscriber::EnvFilter::new(filter))
        });
        // Errors from anywhere; the counted messages are shardmeta's own, at debug or above.
        let wanted = tracing_subscriber::filter::filter_fn(|m| {
            *m.level() == Level::ERROR
                || (*m.level() <= Level::DEBUG && m.target().starts_with("shardmeta"))
        });
        let subscriber =
            tracing_subscriber::registry().with(self.clone().with_filter(wanted)).with(printed);
        tracing::subscriber::set_default(subscriber)
    }
}

struct Message<'a>(&'a mut String);

impl Visit for Message<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut text = String::new();
        event.record(&mut Message(&mut text));
        let mut c = self.0.lock().expect("capture lock");
        if *event.metadata().level() == Level::ERROR {
            c.error_count += 1;
            if c.errors.len() < ERRORS_KEPT {
                c.errors.push(format!("{}: {text}", event.metadata().target()));
            }
        }
        for (i, (_, needle)) in COUNTED.iter().enumerate() {
            if text.contains(needle) {
                c.counts[i] += 1;
            }
        }
    }
}
