//! `tally audit`: re-check a market's settlements from public data.

use std::process::ExitCode;

use tally_protocol::Client;

use crate::cli::AuditArgs;

pub async fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.market, None);
    let report = crate::audit::audit(&client).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.summary());
    }
    if report.ok {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "tally: the audit of {} found {} problem(s)",
            args.market,
            report.findings.len()
        );
        Ok(ExitCode::FAILURE)
    }
}
