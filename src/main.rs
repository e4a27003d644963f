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
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("tally: {}", chain.join(": "));
            std::process::ExitCode::FAILURE
        }
    }
}
