//! `tally bid`: post a bid for images, optionally wait for the verdicts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use tally_protocol::wire::{BidRequest, BidStatus, TaskState};
use tally_protocol::{Client, Sha256Hex, Stroops};

use crate::cli::BidArgs;

/// Upload `spec` if it is a model file, else take it as a sha256 the market knows.
pub async fn resolve_model(client: &Client, spec: &str) -> anyhow::Result<Sha256Hex> {
    let path = Path::new(spec);
    if path.is_file() {
        let bytes = std::fs::read(path).with_context(|| format!("reading model {spec}"))?;
        let up = client
            .upload_model(bytes)
            .await
            .context("uploading the model")?;
        return Ok(up.model);
    }
    Sha256Hex::parse(spec)
        .map_err(|_| anyhow::anyhow!("--model {spec:?} is neither a model file nor a sha256"))
}

pub async fn run(args: BidArgs) -> anyhow::Result<ExitCode> {
    let client = args.to.client()?;
    if let Some(dir) = &args.draw {
        anyhow::ensure!(
            !dir.is_file(),
            "--draw {}: a folder is wanted (each image is written into it as NAME.png), \
             and this is a file",
            dir.display()
        );
    }
    let model = resolve_model(&client, &args.model).await?;
    let mut images = Vec::with_capacity(args.images.len());
    for p in &args.images {
        images.push(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?);
    }
    let req = BidRequest {
        replicas: args.replicas,
        quorum: args.quorum,
        max_replicas: args.max_replicas,
        deadline_secs: args.deadline_secs,
        confidence: args.confidence,
        review_price: args.review_price.map(Stroops),
        ..BidRequest::new(model, Stroops(args.price))
    };
    let created = client
        .bid_images(req, &images)
        .await
        .map_err(|e| name_inputs(e, &args.images))
        .context("posting the bid")?;
    // Drawing needs the answers: --draw waits for them too.
    if !args.wait && args.draw.is_none() {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&created)?);
        } else {
            println!(
                "bid {} posted: {} task(s), {} stroops reserved",
                created.bid,
                created.tasks.len(),
                created.reserved.0
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let status = wait_for(&client, created.bid, !args.json).await?;
    if let Some(dir) = &args.draw {
        draw(dir, &args.images, &images, &status)?;
    }
    if args.json {
        let out = serde_json::json!({
            "bid": status.bid,
            "status": status.status,
            "spent": status.spent,
            "tasks": status.tasks.iter().zip(&args.images).map(|(t, p)| serde_json::json!({
                "path": p, "task": t.task, "status": t.status, "consensus": t.consensus,
                "reviewed": t.reviewed, "reviews": t.reviews, "review_cost": t.review_cost,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_human(&status, &args.images);
    }
    let all_verified = status.tasks.iter().all(|t| t.status == TaskState::Verified);
    Ok(if all_verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// The market names a refused image by its place in the bid ("input 0 is
/// not a decodable image"): name it by the file given instead.
fn name_inputs(e: tally_protocol::Error, paths: &[PathBuf]) -> anyhow::Error {
    if let tally_protocol::Error::Api { message, .. } = &e {
        for (i, p) in paths.iter().enumerate() {
            let input = format!("input {i}");
            let named = message
                .strip_prefix(&input)
                .filter(|rest| rest.is_empty() || rest.starts_with(' ') || rest.starts_with(':'));
            if let Some(rest) = named {
                return anyhow::anyhow!("{}{rest}", p.display());
            }
        }
    }
    e.into()
}

/// Wait until every task of the bid is final (the market pushes each
/// decision through a long-poll), with a progress bar on stderr.
pub async fn wait_for(
    client: &Client,
    bid: tally_protocol::BidId,
    progress: bool,
) -> anyhow::Result<BidStatus> {
    let first = client.bid(bid).await?;
    let bar = if progress {
        let b = indicatif::ProgressBar::new(first.tasks.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {pos}/{len} decided",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut status = first;
    loop {
        let decided = status.tasks.iter().filter(|t| t.status.is_final()).count();
        let running = status
            .tasks
            .iter()
            .filter(|t| t.status == TaskState::Running)
            .count();
        let in_review = status
            .tasks
            .iter()
            .filter(|t| t.status == TaskState::Review)
            .count();
        bar.set_position(decided as u64);
        bar.set_message(if in_review > 0 {
            format!(
                "bid {}: {running} running, {in_review} in review",
                status.bid
            )
        } else {
            format!("bid {}: {running} running", status.bid)
        });
        // Every task final is all a client waits for: a replica still out
        // when its task was decided changes no answer (the bid closes, and
        // refunds, once it ends).
        if status.status == tally_protocol::wire::BidState::Done || decided == status.tasks.len() {
            break;
        }
        // The market answers as soon as another task is decided.
        status = client.bid_wait(bid, decided, 30_000).await?;
    }
    bar.finish_and_clear();
    Ok(status)
}

fn print_human(status: &BidStatus, paths: &[PathBuf]) {
    if status.status == tally_protocol::wire::BidState::Done {
        println!("bid {}: done, spent {} stroops", status.bid, status.spent.0);
    } else {
        // Decided, but a replica sent before the decision is still out: it
        // may yet be paid, and the rest is refunded once it ends.
        println!(
            "bid {}: every task decided, spent {} stroops so far",
            status.bid, status.spent.0
        );
    }
    for (t, p) in status.tasks.iter().zip(paths) {
        if t.reviewed {
            println!(
                "{} (task {}): {} by human review (the workers did not agree; {} review{}, {} stroops)",
                p.display(),
                t.task,
                t.status.as_str(),
                t.reviews,
                if t.reviews == 1 { "" } else { "s" },
                t.review_cost.0
            );
        } else {
            println!("{} (task {}): {}", p.display(), t.task, t.status.as_str());
        }
        for d in t.consensus.iter().flatten() {
            println!(
                "  {:<14} {:.2}  [{:.0}, {:.0}, {:.0}, {:.0}]",
                d.label, d.score, d.bbox[0], d.bbox[1], d.bbox[2], d.bbox[3]
            );
        }
    }
}

fn draw(
    dir: &Path,
    paths: &[PathBuf],
    images: &[Vec<u8>],
    status: &BidStatus,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for ((t, p), bytes) in status.tasks.iter().zip(paths).zip(images) {
        let Some(consensus) = &t.consensus else {
            continue;
        };
        let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or("image");
        let out = dir.join(format!("{name}.png"));
        tally_worker::draw::save_annotated(bytes, consensus, &out)
            .with_context(|| format!("drawing {}", out.display()))?;
    }
    Ok(())
}
