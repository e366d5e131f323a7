use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = domain_events_cli::Cli::parse();
    domain_events_cli::run(cli, &mut std::io::stdout().lock()).unwrap_or_else(|error| {
        eprintln!("{}", error.report());
        error.exit_code()
    })
}
