//! `domain-events dashboard`: serves the web dashboard of `domain-events-dashboard` until Ctrl-C
//! or SIGTERM.

use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use domain_events_dashboard::Dashboard;

use crate::redis_args::block_on;
use crate::tail::interrupted;
use crate::{Error, RedisArgs, SchemaArgs, say};

/// The environment variable `--token` falls back to.
pub const DASHBOARD_TOKEN_ENV: &str = "DOMAIN_EVENTS_DASHBOARD_TOKEN";

/// The options of `domain-events dashboard` (its help text is on [`crate::Command::Dashboard`]).
///
/// `Debug` hides the token and the URL's password.
#[derive(Clone, clap::Args)]
pub struct DashboardArgs {
    /// Where the streams are.
    #[command(flatten)]
    pub redis: RedisArgs,

    /// Address to listen on; other than loopback only with care (see --token)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7474")]
    pub listen: SocketAddr,

    /// Allow replaying and deleting dead letters (default: read-only)
    #[arg(long)]
    pub allow_actions: bool,

    /// Require `Authorization: Bearer TOKEN` on the API and /metrics
    #[arg(long, value_name = "TOKEN", env = DASHBOARD_TOKEN_ENV, hide_env_values = true)]
    pub token: Option<String>,

    /// The schemas: the catalog page, and which payload fields are sensitive. A folder that does
    /// not exist means no catalog: then no payload is shown.
    #[command(flatten)]
    pub schema: SchemaArgs,
}

impl fmt::Debug for DashboardArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DashboardArgs")
            .field("redis", &self.redis)
            .field("listen", &self.listen)
            .field("allow_actions", &self.allow_actions)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("schema", &self.schema)
            .finish()
    }
}

pub(crate) fn run(args: &DashboardArgs, out: &mut dyn Write) -> Result<ExitCode, Error> {
    let open = !args.listen.ip().is_loopback();
    if open && args.allow_actions && args.token.is_none() {
        return Err(Error::Unsafe(format!(
            "refusing to allow actions on {} without --token: anyone who can reach it could replay and delete dead letters",
            args.listen
        )));
    }
    let catalog = if args.schema.schemas.is_dir() {
        Some(args.schema.load()?)
    } else {
        eprintln!(
            "warning: no schema folder `{}`: no catalog, and no payload is shown",
            args.schema.schemas.display()
        );
        None
    };
    if open && args.token.is_none() {
        eprintln!(
            "warning: listening on {} without --token: anyone who can reach it can read the dashboard",
            args.listen
        );
    }
    let config = args.redis.config()?;
    block_on(async {
        let mut builder = Dashboard::builder(config).allow_actions(args.allow_actions);
        if let Some(catalog) = catalog {
            builder = builder.catalog(catalog);
        }
        if let Some(token) = &args.token {
            builder = builder.token(token.clone());
        }
        let dashboard = builder.build()?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|source| domain_events_dashboard::Error::Bind {
                addr: args.listen.to_string(),
                source,
            })?;
        let addr = listener.local_addr().unwrap_or(args.listen);
        say(
            out,
            format_args!(
                "dashboard on http://{addr}/ ({}); Ctrl-C stops it",
                if args.allow_actions {
                    "actions allowed"
                } else {
                    "read-only"
                }
            ),
        )?;
        out.flush().map_err(Error::Output)?;
        domain_events_dashboard::serve(listener, dashboard, interrupted()).await?;
        Ok::<_, Error>(ExitCode::SUCCESS)
    })?
}
