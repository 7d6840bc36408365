//! The workspace's binaries as child processes: built once per test
//! process, started with a given environment, their bound address read from
//! their JSON `listening` log line.
#![allow(clippy::unwrap_used)] // Test support: a panic is the failing test's report.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{mpsc, Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use serde_json::Value;

/// The directory holding the freshly built binaries.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // This test executable lives in <target>/<profile>/deps/.
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "build",
            "-p",
            "write-api",
            "-p",
            "read-api",
            "-p",
            "invalidator",
        ]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().unwrap();
        assert!(status.success(), "building the binaries failed: {status}");
        profile_dir
    })
}

/// A running binary; SIGKILLed on drop. Its stdout (JSON logs) is kept for
/// failure messages.
pub struct Proc {
    name: String,
    child: Child,
    pub addr: String,
    log: Arc<Mutex<String>>,
}

impl Proc {
    /// Starts `binary` with `args` and `envs` and waits for its `listening`
    /// log line.
    pub fn start(binary: &str, args: &[&str], envs: &[(&str, String)]) -> Self {
        Self::start_exe(&bin_dir().join(binary), args, envs)
    }

    /// Starts the executable at `path` (e.g. `env!("CARGO_BIN_EXE_read-api")`)
    /// like [`start`](Self::start). Only `envs` configure it: `REDIS_URL` and
    /// `DATABASE_URL` of the test run are not passed on.
    pub fn start_exe(path: &Path, args: &[&str], envs: &[(&str, String)]) -> Self {
        let binary = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let binary = binary.as_str();
        let mut command = Command::new(path);
        command
            .args(args)
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env_remove("REDIS_URL")
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let (log, tx) = (Arc::clone(&log), tx.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(addr) = listening_addr(&line) {
                        let _ = tx.send(addr);
                    }
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "{binary} did not log `listening`; log:\n{}",
                    log.lock().unwrap()
                )
            });
        Self {
            name: binary.to_owned(),
            child,
            addr,
            log,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        self.sigterm();
        self.wait_exit(within)
    }

    /// Sends SIGTERM (a graceful stop) and returns at once.
    pub fn sigterm(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// The exit status once the process has exited, or None if it still
    /// runs after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- log of {} ----\n{}", self.name, self.log());
        }
    }
}

/// The address of a `listening` log line, in the JSON log format (flattened
/// or with the event's fields nested under `fields`).
fn listening_addr(line: &str) -> Option<String> {
    let value: Value = serde_json::from_str(line).ok()?;
    let fields = value.get("fields").unwrap_or(&value);
    (fields.get("message")?.as_str()? == "listening")
        .then(|| fields.get("addr")?.as_str().map(str::to_owned))
        .flatten()
}
