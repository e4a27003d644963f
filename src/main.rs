use clap::Parser;

/// The market allocates and frees many small buffers per request (rows,
/// JSON, HTTP); mimalloc does that faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = tally::cli::Cli::parse();
    if let tally::cli::Command::InferChild(args) = cli.command {
        // Before any thread exists: the child confines itself first.
        return tally::cmd::work::infer_child(args);
    }
    quiet_on_closed_stdout();
    let quiet = matches!(
        cli.command,
        tally::cli::Command::Demo(_) | tally::cli::Command::Bench(_)
    );
    tally::cmd::init_logging(cli.verbose, quiet);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the async runtime starts");
    match runtime.block_on(tally::cmd::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tally: {}", tally::cmd::explain(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Output piped into `head` and the like: once the reader is gone, stop
/// quietly (exit 141, as a shell reports a tool ended by SIGPIPE) instead
/// of panicking on "Broken pipe". SIGPIPE itself stays ignored: hyper
/// writes to sockets with `writev`, which would raise it when a peer
/// hangs up, and the worker writes to its confined child over a pipe.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}
