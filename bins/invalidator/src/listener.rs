//! The LISTEN connection: a dedicated tokio-postgres connection that turns
//! `NOTIFY video_events` into wake-ups of the worker, reconnecting with
//! backoff and waking the worker after every (re)connect so that it catches up
//! on whatever was committed while nobody listened.

use std::{
    str::FromStr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, Client, NoTls};
use tokio_util::sync::CancellationToken;

use crate::{retry, stats};

/// Reads the state of the LISTEN connection (for `/readyz`).
#[derive(Clone, Default)]
pub struct ListenStatus {
    client: Arc<Mutex<Option<Arc<Client>>>>,
}

impl ListenStatus {
    fn set(&self, client: Option<Arc<Client>>) {
        *self.client.lock().unwrap_or_else(PoisonError::into_inner) = client;
    }

    /// Whether the connection is up and answers a query in time.
    pub async fn check(&self, timeout: Duration) -> Result<(), String> {
        let client = self
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or("not connected")?;
        match tokio::time::timeout(timeout, client.simple_query("select 1")).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }
}

pub struct Listener {
    config: tokio_postgres::Config,
    wake: Arc<Notify>,
    status: ListenStatus,
    max_delay: Duration,
}

impl Listener {
    /// Accepts every libpq URL form, including a socket directory in `host=`.
    pub fn new(
        database_url: &str,
        wake: Arc<Notify>,
        max_delay: Duration,
    ) -> Result<Self, crate::Error> {
        let mut config = tokio_postgres::Config::from_str(database_url)
            .map_err(|e| crate::Error::Config(format!("DATABASE_URL: {e}")))?;
        config
            .application_name("invalidator-listen")
            .connect_timeout(Duration::from_secs(5))
            // A LISTEN connection only receives: keepalives notice a peer that
            // vanished without closing, and the poll covers the meantime.
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30));
        Ok(Self {
            config,
            wake,
            status: ListenStatus::default(),
            max_delay,
        })
    }

    pub fn status(&self) -> ListenStatus {
        self.status.clone()
    }

    /// Listens until `shutdown`, reconnecting whenever the connection fails.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut delays = retry::backoff(self.max_delay);
        loop {
            let outcome = tokio::select! {
                // Also interrupts a connect attempt to an unreachable server.
                () = shutdown.cancelled() => Ok(()),
                outcome = self.listen_once(&shutdown) => outcome,
            };
            let Err(lost) = outcome else {
                return;
            };
            stats::postgres_error();
            self.status.set(None);
            if lost.listened {
                // It worked until now: this is a new outage, not the same one.
                delays = retry::backoff(self.max_delay);
            }
            let delay = delays.next().unwrap_or(self.max_delay);
            tracing::warn!(error = %lost.reason, ?delay, "LISTEN connection lost; reconnecting");
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// One connection's life: Ok on shutdown, Err when it failed.
    async fn listen_once(&self, shutdown: &CancellationToken) -> Result<(), Lost> {
        let (client, mut connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| Lost::before_listen(e.to_string()))?;
        let wake = Arc::clone(&self.wake);
        // The connection delivers notifications only while polled, so a task
        // drives it for as long as it lives.
        let mut driver = tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(_))) => wake.notify_one(),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                    None => return Ok(()),
                }
            }
        });
        let client = Arc::new(client);
        let statement = format!("LISTEN {}", shared::events::CHANNEL);
        let listening = client.batch_execute(&statement);
        let result = tokio::select! {
            r = listening => r,
            r = &mut driver => {
                return Err(Lost::before_listen(connection_end(r)));
            }
        };
        if let Err(e) = result {
            driver.abort();
            return Err(Lost::before_listen(e.to_string()));
        }
        self.status.set(Some(Arc::clone(&client)));
        tracing::info!(
            channel = shared::events::CHANNEL,
            "listening for change events"
        );
        // Anything committed while nobody listened is in the outbox only.
        self.wake.notify_one();
        tokio::select! {
            () = shutdown.cancelled() => {
                driver.abort();
                self.status.set(None);
                Ok(())
            }
            r = &mut driver => Err(Lost {
                listened: true,
                reason: connection_end(r),
            }),
        }
    }
}

/// Why a connection ended, and whether it had got as far as LISTEN.
struct Lost {
    listened: bool,
    reason: String,
}

impl Lost {
    fn before_listen(reason: String) -> Self {
        Self {
            listened: false,
            reason,
        }
    }
}

/// Why the connection driver stopped (it only stops on failure or close).
fn connection_end(r: Result<Result<(), tokio_postgres::Error>, tokio::task::JoinError>) -> String {
    match r {
        Ok(Err(e)) => e.to_string(),
        Ok(Ok(())) => "connection closed".into(),
        Err(e) => format!("connection driver failed: {e}"),
    }
}
