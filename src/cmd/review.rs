//! `tally review` (a verified reviewer: show the next task the workers did
//! not agree on, answer it) and `tally admin reviewers` (the operator's
//! signed marks of who may review).

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use serde_json::json;
use tally_protocol::wire::{ReviewOutcome, ReviewRequest, ReviewTicket, ReviewerMark};
use tally_protocol::{AccountId, Client, Detection, Domain, Error, Signer};

use crate::cli::{ReviewArgs, ReviewerListArgs, ReviewerMarkArgs, ReviewersCommand};

/// Take the next review, show it, and answer it from `--pick`,
/// `--detections` or the terminal (or leave it in the reviewer's hands).
pub async fn run(args: ReviewArgs) -> anyhow::Result<ExitCode> {
    let signer = Signer::load(&args.to.key).context("--key")?;
    let me = signer.account().clone();
    let from_file = check_args(&args)?;
    let client = Client::new(&args.to.market, Some(signer));
    let ticket = match client.next_review_wait(args.wait * 1000).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            if args.json {
                println!("{}", json!({ "ticket": null, "outcome": null }));
            } else {
                println!("nothing to review");
            }
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(explain(&e, &me, None)),
    };
    if let Some(dir) = &args.draw {
        draw(&client, &ticket, dir).await?;
    }
    let Some(detections) = answer_of(&args, &ticket, from_file)? else {
        show_unanswered(&args, &ticket);
        return Ok(ExitCode::SUCCESS);
    };
    let outcome = client
        .submit_review(ticket.review, &ReviewRequest { detections })
        .await
        .map_err(|e| explain(&e, &me, Some(&ticket)))?;
    if args.json {
        println!("{}", json!({ "ticket": ticket, "outcome": outcome }));
    } else {
        if args.pick.is_some() || args.detections.is_some() {
            print!("{}", describe(&ticket));
        }
        println!("{}", answered(&outcome));
    }
    Ok(ExitCode::SUCCESS)
}

/// Refuse flags that cannot work before a review is taken; the answer file's
/// detections, read first so a bad file fails before a review is taken.
fn check_args(args: &ReviewArgs) -> anyhow::Result<Option<Vec<Detection>>> {
    if let Some(dir) = &args.draw {
        anyhow::ensure!(
            !dir.is_file(),
            "--draw {}: a folder is wanted (the image and candidate-N.png are written into it), \
             and this is a file",
            dir.display()
        );
    }
    // Never a pick of candidates unseen: the reviewer names the task whose
    // candidates were shown (the review stays theirs until answered).
    if let (Some(n), None) = (args.pick, args.task) {
        anyhow::bail!(
            "--pick {n} needs --task ID, the task whose candidates you were shown: run \
             `tally review` first (it shows the next review and keeps it yours), then \
             answer with --task ID --pick N"
        );
    }
    match &args.detections {
        Some(path) => Ok(Some(read_detections(path)?)),
        None => Ok(None),
    }
}

/// The answer to `ticket`: the candidate picked, the file's detections, or
/// what the reviewer types at a terminal; `None` to leave it unanswered.
/// An answer meant for another task is refused.
fn answer_of(
    args: &ReviewArgs,
    ticket: &ReviewTicket,
    from_file: Option<Vec<Detection>>,
) -> anyhow::Result<Option<Vec<Detection>>> {
    if let Some(task) = args.task {
        if ticket.task.0 != task {
            if !args.json {
                print!("{}", describe(ticket));
            }
            anyhow::bail!(
                "not answered: the review in your hands is of task {}, not task {task}; \
                 look at its candidates above, then answer with --task {} --pick N",
                ticket.task,
                ticket.task
            );
        }
    }
    Ok(match (args.pick, from_file) {
        (Some(n), _) => Some(pick(ticket, n)?),
        (None, Some(dets)) => Some(dets),
        (None, None) if !args.json && std::io::stdin().is_terminal() => {
            print!("{}", describe(ticket));
            ask(ticket)?
        }
        (None, None) => None,
    })
}

/// A review left unanswered: the ticket, and how to answer it later.
fn show_unanswered(args: &ReviewArgs, ticket: &ReviewTicket) {
    if args.json {
        println!("{}", json!({ "ticket": ticket, "outcome": null }));
    } else {
        print!("{}", describe(ticket));
        println!(
            "\nnot answered: the review stays yours until {} UTC. Answer with\n  \
             tally review --market {} --key {} --task {} --pick N\nor --detections FILE.json (a JSON array of detections).",
            ticket.lease_expires_at.format("%Y-%m-%d %H:%M:%S"),
            args.to.market,
            args.to.key,
            ticket.task
        );
    }
}

/// The ticket as a person reads it.
pub fn describe(t: &ReviewTicket) -> String {
    let mut out = format!(
        "review {} of task {} (model {}, image {})\npays {} stroops (fee included) if the decision agrees with your answer; yours until {} UTC\n",
        t.review,
        t.task,
        short(t.model.as_str()),
        short(t.input.as_str()),
        t.price.0,
        t.lease_expires_at.format("%Y-%m-%d %H:%M:%S"),
    );
    if t.candidates.is_empty() {
        out.push_str("no candidate: every result was malformed; answer with --detections\n");
    }
    for (i, c) in t.candidates.iter().enumerate() {
        let n = c.assignments.len();
        out.push_str(&format!(
            "  [{}] {n} result{}: {}\n",
            i + 1,
            if n == 1 { "" } else { "s" },
            if c.detections.is_empty() {
                "nothing detected".to_string()
            } else {
                format!("{} detections", c.detections.len())
            }
        ));
        for d in &c.detections {
            out.push_str(&format!("        {}\n", detection(d)));
        }
    }
    out
}

/// `dog 0.83 [133.0, 207.0, 324.0, 542.0]`
pub fn detection(d: &Detection) -> String {
    let [x1, y1, x2, y2] = d.bbox;
    format!(
        "{:<14} {:.2}  [{x1:.1}, {y1:.1}, {x2:.1}, {y2:.1}]",
        d.label, d.score
    )
}

fn answered(o: &ReviewOutcome) -> String {
    let now = match o.task_status.as_str() {
        "review" => "is still under review (it waits for another reviewer)".to_string(),
        other => format!("is now {other}"),
    };
    format!(
        "answered review {} of task {}: the task {now}",
        o.review, o.task
    )
}

/// Candidate `n`, numbered from 1 as [`describe`] shows them.
fn pick(t: &ReviewTicket, n: usize) -> anyhow::Result<Vec<Detection>> {
    match n.checked_sub(1).and_then(|i| t.candidates.get(i)) {
        Some(c) => Ok(c.detections.clone()),
        None if t.candidates.is_empty() => Err(anyhow!(
            "--pick {n}: review {} has no candidates; answer with --detections",
            t.review
        )),
        None => Err(anyhow!(
            "--pick {n}: review {} has candidates 1 to {}",
            t.review,
            t.candidates.len()
        )),
    }
}

/// Ask on the terminal which candidate is right; `None`: leave it for now.
fn ask(t: &ReviewTicket) -> anyhow::Result<Option<Vec<Detection>>> {
    if t.candidates.is_empty() {
        return Ok(None);
    }
    let stdin = std::io::stdin();
    loop {
        print!(
            "Which candidate is right? [1-{}, or s to leave it for now] ",
            t.candidates.len()
        );
        std::io::stdout().flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim();
        if line.eq_ignore_ascii_case("s") || line.is_empty() {
            return Ok(None);
        }
        match line.parse::<usize>().ok().map(|n| pick(t, n)) {
            Some(Ok(d)) => return Ok(Some(d)),
            _ => println!("{line:?} is not a candidate"),
        }
    }
}

/// A JSON array of detections, or an object with a `detections` array.
fn read_detections(path: &Path) -> anyhow::Result<Vec<Detection>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--detections {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("--detections {}: not JSON", path.display()))?;
    let array = match value {
        serde_json::Value::Object(mut o) if o.contains_key("detections") => o.remove("detections"),
        other => Some(other),
    };
    serde_json::from_value(array.unwrap_or_default()).with_context(|| {
        format!(
            "--detections {}: expected a JSON array of detections ({{\"class_id\", \"label\", \"score\", \"box\"}})",
            path.display()
        )
    })
}

/// The image, and one copy per candidate with its boxes, into `dir`.
async fn draw(client: &Client, t: &ReviewTicket, dir: &Path) -> anyhow::Result<()> {
    let bytes = client
        .input(&t.input)
        .await
        .with_context(|| format!("GET /v1/inputs/{}", t.input))?;
    std::fs::create_dir_all(dir).with_context(|| format!("--draw {}", dir.display()))?;
    let ext = image::guess_format(&bytes)
        .ok()
        .and_then(|f| f.extensions_str().first().copied())
        .unwrap_or("img");
    std::fs::write(dir.join(format!("image.{ext}")), &bytes)
        .with_context(|| format!("--draw {}", dir.display()))?;
    for (i, c) in t.candidates.iter().enumerate() {
        let out = dir.join(format!("candidate-{}.png", i + 1));
        let (bytes, dets) = (bytes.clone(), c.detections.clone());
        tokio::task::spawn_blocking(move || {
            tally_worker::draw::save_annotated(&bytes, &dets, &out)
        })
        .await
        .context("drawing crashed")?
        .map_err(|e| anyhow!("--draw: {}", tally_worker::one_line(&e)))?;
    }
    eprintln!("drew the image and its candidates into {}", dir.display());
    Ok(())
}

/// The market's refusal as one line naming the problem.
fn explain(e: &Error, me: &AccountId, ticket: Option<&ReviewTicket>) -> anyhow::Error {
    let review = ticket
        .map(|t| format!("review {} of task {}", t.review, t.task))
        .unwrap_or_else(|| "the review".into());
    match e {
        Error::Api { status: 403, code, .. } if code == "not_a_reviewer" => anyhow!(
            "{me} is not a verified reviewer on this market: the operator marks reviewers with `tally admin reviewers add` (403 {code})"
        ),
        Error::Api {
            status: 409,
            code,
            message,
        } if code == "decided" => anyhow!("{review} is closed: the task was already decided ({message})"),
        Error::Api {
            status: 409,
            message,
            ..
        } => anyhow!("{review} was already answered or has expired ({message})"),
        Error::Api {
            status, message, ..
        } => anyhow!("{review}: the market refused ({status}: {message})"),
        other => anyhow!("asking the market: {other}"),
    }
}

fn short(s: &str) -> String {
    s.chars().take(12).collect::<String>() + "…"
}

pub async fn reviewers(cmd: ReviewersCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ReviewersCommand::Add(args) => mark(args, true).await,
        ReviewersCommand::Remove(args) => mark(args, false).await,
        ReviewersCommand::List(args) => list(args).await,
    }
}

fn accounts(raw: &[String]) -> anyhow::Result<Vec<AccountId>> {
    raw.iter()
        .map(|a| {
            a.trim()
                .parse::<AccountId>()
                .map_err(|e| anyhow!("{a}: {e}"))
        })
        .collect()
}

async fn mark(args: ReviewerMarkArgs, verified: bool) -> anyhow::Result<ExitCode> {
    let who = accounts(&args.accounts)?;
    let client = args.to.client()?;
    let mut marks = Vec::with_capacity(who.len());
    for account in &who {
        let m = client
            .mark_reviewer(account, verified)
            .await
            .with_context(|| format!("marking {account}"))?;
        if !args.json {
            println!("{}", mark_line(&m));
        }
        marks.push(m);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&marks)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// `G... verified to review (mark 3, signed by G... at 2025-.. UTC)`
fn mark_line(m: &ReviewerMark) -> String {
    format!(
        "{} {} (mark {}, signed by {} at {} UTC)",
        m.account,
        if m.verified {
            "verified to review"
        } else {
            "no longer verified to review"
        },
        m.id,
        m.signer,
        utc(m.timestamp)
    )
}

fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}

async fn list(args: ReviewerListArgs) -> anyhow::Result<ExitCode> {
    let only = accounts(&args.accounts)?;
    let signer = match &args.key {
        Some(k) => Some(Signer::load(k).context("--key")?),
        None => None,
    };
    let client = Client::new(&args.market, signer);
    let mut marks = client
        .reviewer_marks()
        .await
        .context("GET /v1/reviewers")?
        .marks;
    marks.retain(|m| only.is_empty() || only.contains(&m.account));
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "marks": marks }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let domain = client.domain().await.context("GET /v1/market")?;
    print!("{}", standings(&marks, &domain, &only));
    Ok(ExitCode::SUCCESS)
}

/// Each account's standing now (its latest mark), then every mark, oldest
/// first, each checked: its signature and that the operator signed it.
pub fn standings(marks: &[ReviewerMark], domain: &Domain, only: &[AccountId]) -> String {
    let operator = &domain.operator;
    let mut order: Vec<&AccountId> = Vec::new();
    for m in marks {
        if !order.contains(&&m.account) {
            order.push(&m.account);
        }
    }
    let mut out = String::new();
    for a in only {
        if !order.contains(&a) {
            out.push_str(&format!("{a}  never marked: not a reviewer\n"));
        }
    }
    if marks.is_empty() && only.is_empty() {
        out.push_str("no reviewer marks: nobody may review yet\n");
    }
    for a in &order {
        let latest = marks
            .iter()
            .filter(|m| &m.account == *a)
            .max_by_key(|m| (m.timestamp, m.id))
            .expect("an account listed has a mark");
        out.push_str(&format!(
            "{a}  {} since {} UTC\n",
            if latest.verified {
                "verified"
            } else {
                "not verified"
            },
            utc(latest.timestamp)
        ));
    }
    if !marks.is_empty() {
        out.push_str("\nhistory (oldest first):\n");
    }
    for m in marks {
        let check = match m.verify(domain) {
            Err(e) => format!("  BAD: {e}"),
            Ok(_) if &m.signer != operator => {
                format!("  BAD: signed by {}, not the operator", m.signer)
            }
            Ok(_) => String::new(),
        };
        out.push_str(&format!(
            "  #{:<4} {} UTC  {}  {}{check}\n",
            m.id,
            utc(m.timestamp),
            m.account,
            if m.verified { "add" } else { "remove" },
        ));
    }
    out
}

#[cfg(test)]
mod tests;
