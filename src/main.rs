//! The `clicktocall` binary: `serve` (default) and `check-config`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use clicktocall::config::Config;
use clicktocall::gateway::{shutdown_signal, Gateway};
use clicktocall::telemetry::{self, LogFormat};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "clicktocall",
    version,
    about = "WebRTC click-to-call gateway (browser or callback customers, IVR, queues, SIP agents)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Config file (default: the embedded local demo config).
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    /// Log line format.
    #[arg(long, value_enum, default_value = "pretty", global = true)]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Serve,
    /// Check a config file and exit: 0 when valid, 1 with the key and reason when not.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig { file }) => check_config(&file),
        Some(Command::Serve) | None => match serve(cli.config, cli.log_format) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("clicktocall: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn check_config(file: &std::path::Path) -> ExitCode {
    match Config::load(file) {
        Ok(cfg) => {
            println!(
                "{}: ok ({} trunk(s), {} queue(s), {} agent(s))",
                file.display(),
                cfg.trunks.len(),
                cfg.queues.len(),
                cfg.agents.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Option<PathBuf>, log_format: LogFormat) -> anyhow::Result<()> {
    let cfg = Config::load_or_default(config.as_deref()).context("invalid configuration")?;
    telemetry::init(log_format, &cfg.log.level);
    if let Some((before, after)) = clicktocall::sys::raise_open_files_limit() {
        tracing::debug!(before, after, "open files limit");
        if after < 4096 {
            tracing::warn!(
                limit = after,
                "open files limit is low: each SIP leg holds two sockets (raise LimitNOFILE)"
            );
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let source = config
            .as_ref()
            .map_or("embedded default".to_string(), |p| p.display().to_string());
        let gateway = Gateway::start(cfg).await?;
        tracing::info!(
            config = %source,
            http = %format!("http://{}", gateway.http_addr),
            sip_udp = ?gateway.sip.udp_addr,
            version = env!("CARGO_PKG_VERSION"),
            "clicktocall ready"
        );
        shutdown_signal().await;
        gateway.shutdown().await;
        Ok(())
    })
}
