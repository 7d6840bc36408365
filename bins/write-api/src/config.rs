//! The command line: one clap struct per subcommand, each flattening the shared
//! setting groups, so `write-api <subcommand> --help` lists exactly what it reads.

use std::ffi::OsString;

use clap::{Args, Parser, Subcommand};
use shared::config::{DatabaseArgs, HttpArgs, TelemetryArgs};

#[derive(Debug, Parser)]
#[command(
    name = "write-api",
    version,
    about = "The admin API over videos (the command side). Without a subcommand it serves.",
    override_usage = "write-api [serve] [OPTIONS]\n       write-api migrate [OPTIONS]\n       write-api seed --videos <N> [OPTIONS]",
    after_help = "`write-api <COMMAND> --help` lists the settings of each command."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the admin API (the default): applies pending migrations in the
    /// background, retrying while Postgres is down.
    Serve(ServeArgs),
    /// Apply pending migrations and exit.
    Migrate(MigrateArgs),
    /// Bulk-load realistic demo videos (applies pending migrations first).
    Seed(SeedArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub telemetry: TelemetryArgs,

    #[command(flatten)]
    pub http: HttpArgs,

    /// Address to listen on (port 0: any free port; the bound one is logged).
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8081")]
    pub listen_addr: String,

    /// Comma-separated bearer tokens accepted on /v1; at least one is required.
    #[arg(
        long,
        env = "ADMIN_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub admin_tokens: Vec<String>,

    #[command(flatten)]
    pub console: ConsoleArgs,
}

/// The admin console (`/admin`): its sessions and cookie.
#[derive(Debug, Clone, Args)]
pub struct ConsoleArgs {
    /// Admin console: a session ends after this many seconds without a request.
    #[arg(long, env = "ADMIN_SESSION_IDLE_SECS", default_value_t = 1800)]
    pub admin_session_idle_secs: u32,

    /// Admin console: a session ends this many seconds after sign-in, however busy.
    #[arg(long, env = "ADMIN_SESSION_MAX_SECS", default_value_t = 43_200)]
    pub admin_session_max_secs: u32,

    /// Admin console: send the session cookie without `Secure`, so that it
    /// works over plain HTTP. Development only; never in production.
    #[arg(long, env = "ADMIN_INSECURE_COOKIE")]
    pub admin_insecure_cookie: bool,
}

impl Default for ConsoleArgs {
    fn default() -> Self {
        Self {
            admin_session_idle_secs: 1800,
            admin_session_max_secs: 43_200,
            admin_insecure_cookie: false,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub telemetry: TelemetryArgs,

    /// How many demo videos to load.
    #[arg(long, env = "SEED_VIDEOS")]
    pub videos: u64,
}

/// The arguments with `serve` inserted when no subcommand is named, so that
/// `write-api` and `write-api --listen-addr ...` serve while `write-api --help`
/// still lists the subcommands.
pub fn with_default_subcommand(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let named = args.get(1).and_then(|a| a.to_str()).is_some_and(|first| {
        matches!(
            first,
            "serve" | "migrate" | "seed" | "help" | "-h" | "--help" | "-V" | "--version"
        )
    });
    if !named {
        args.insert(1.min(args.len()), OsString::from("serve"));
    }
    args
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(with_default_subcommand(args.iter().map(OsString::from)))
    }

    #[test]
    fn serve_is_the_default_subcommand() {
        let cli = parse(&[
            "write-api",
            "--database-url",
            "postgres://x",
            "--admin-tokens",
            "a, b,,",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("expected serve");
        };
        assert_eq!(args.listen_addr, "127.0.0.1:8081");
        assert_eq!(args.admin_tokens, vec!["a", " b", "", ""]);
    }

    #[test]
    fn migrate_and_seed_need_no_tokens() {
        assert!(matches!(
            parse(&["write-api", "migrate", "--database-url", "postgres://x"])
                .unwrap()
                .command,
            Command::Migrate(_)
        ));
        let cli = parse(&[
            "write-api",
            "seed",
            "--database-url",
            "postgres://x",
            "--videos",
            "5",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Seed(SeedArgs { videos: 5, .. })
        ));
    }

    #[test]
    fn help_lists_the_settings() {
        let help = parse(&["write-api", "serve", "--help"])
            .unwrap_err()
            .to_string();
        for setting in [
            "LISTEN_ADDR",
            "ADMIN_TOKENS",
            "DATABASE_URL",
            "RUST_LOG",
            "LOG_FORMAT",
            "ADMIN_SESSION_IDLE_SECS",
            "ADMIN_SESSION_MAX_SECS",
            "ADMIN_INSECURE_COOKIE",
        ] {
            assert!(help.contains(setting), "{setting} missing from\n{help}");
        }
        let help = parse(&["write-api", "--help"]).unwrap_err().to_string();
        assert!(help.contains("migrate") && help.contains("seed"), "{help}");
    }
}
