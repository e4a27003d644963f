//! The console's review page (`#/review`) driven in headless Chromium over
//! the DevTools protocol, as a reviewer would use it: the seed goes in the
//! URL hash (the test-only shortcut the page takes and drops from the URL),
//! then the page's own buttons are clicked: "Pick" on a candidate, "Sign
//! and submit". The page signs every request itself (WebCrypto Ed25519).
//! Waits are on the page's DOM (a MutationObserver in the page), each
//! bounded by a timeout; nothing sleeps a fixed time.
//!
//! Included by tests as `#[path = "common/review_page.rs"] mod review_page;`
//! next to `mod common;`.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use serde_json::{json, Value};

use crate::common::cdp::{Browser, Page};

/// How long the page may take for each step (well under the 60 s after
/// which the DevTools client gives up on a command).
const LIMIT: Duration = Duration::from_secs(30);

/// What the page shows when it cannot give a review to answer.
const REFUSED: &[&str] = &["#review-error", "#review-empty"];

/// Answer the next review of the reviewer whose seed is `seed` in the
/// console at `base_url`, picking candidate `pick` (0-based) as it is;
/// save a screenshot of the page at `shot` and return the task status the
/// page then shows (`review`, `verified`, `failed`). When the page shows
/// no review to answer (not a verified reviewer, nothing to review, a
/// refused answer) the screenshot is saved too and the error is the
/// page's message.
pub async fn review_in_console(
    base_url: &str,
    seed: &str,
    pick: usize,
    shot: &Path,
) -> anyhow::Result<String> {
    let browser = Browser::launch().ok_or_else(|| anyhow!("no chromium to run the page in"))?;
    let page = browser
        .open(&format!("{base_url}/#/review?seed={seed}"))
        .await;
    let pick_button = format!("#review-ticket #pick-{pick}");

    // The ticket with its candidates, or the page's word on why not.
    let mut wanted = vec!["#review-ticket .candidate".to_string()];
    wanted.extend(REFUSED.iter().map(|s| s.to_string()));
    let (which, text) = first_of(&page, &wanted, LIMIT).await?;
    if which > 0 {
        save(&page, shot).await?;
        bail!("the review page says: {text}");
    }
    let facts = page
        .eval(&format!(
            r#"(() => ({{
                url: location.href,
                html: document.documentElement.outerHTML,
                image: (document.getElementById('review-canvas') || {{ dataset: {{}} }}).dataset.image || null,
                pick: !!document.querySelector({sel}),
                candidates: document.querySelectorAll('#review-ticket .candidate').length,
            }}))()"#,
            sel = json!(pick_button)
        ))
        .await;
    let html = facts["html"].as_str().unwrap_or_default();
    if html.contains(seed) || facts["url"].as_str().unwrap_or_default().contains(seed) {
        bail!("the seed is still in the page or its URL");
    }
    if facts["image"] != json!("input") {
        bail!("the input image is not drawn: {facts}");
    }
    if facts["pick"] != json!(true) {
        bail!(
            "the page shows {} candidates, no candidate {pick} to pick",
            facts["candidates"]
        );
    }

    // The candidates' boxes are drawn: hiding every overlay changes the
    // picture, showing them again brings it back.
    let drawn = page
        .eval(
            r#"(() => {
                const canvas = () => document.getElementById('review-canvas').toDataURL();
                const boxes = canvas();
                const on = [...document.querySelectorAll('#review-ticket input[data-layer]')].filter((i) => i.checked);
                on.forEach((i) => i.click());
                const plain = canvas();
                on.forEach((i) => i.click());
                return { overlays: on.length, differs: boxes !== plain, back: canvas() === boxes };
            })()"#,
        )
        .await;
    if drawn["differs"] != json!(true) || drawn["back"] != json!(true) {
        bail!("the candidates' boxes are not drawn on the image: {drawn}");
    }

    // Pick: the answer is the candidate's detections, ready to sign.
    click(&page, &pick_button).await?;
    let answer = page
        .eval("document.getElementById('review-json').value")
        .await;
    let answer: Value = serde_json::from_str(answer.as_str().unwrap_or_default())
        .context("after Pick, the answer's JSON is filled in")?;
    if !answer.is_array() {
        bail!("after Pick, the answer is not a list of detections: {answer}");
    }
    let submit = page
        .eval("document.getElementById('review-submit').disabled")
        .await;
    if submit != json!(false) {
        bail!("after Pick, \"Sign and submit\" is still disabled");
    }

    // Sign and submit; the page shows the market's answer.
    click(&page, "#review-submit").await?;
    let outcome = "#review-outcome[data-status]".to_string();
    let (which, text) = first_of(&page, &[outcome, REFUSED[0].to_string()], LIMIT).await?;
    save(&page, shot).await?;
    if which > 0 {
        bail!("the review page refused the answer: {text}");
    }
    let status = page
        .eval("document.querySelector('#review-task-status [data-status]').textContent")
        .await;
    status
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("the outcome shows no task status: {text}"))
}

/// Click the element `selector` matches.
async fn click(page: &Page<'_>, selector: &str) -> anyhow::Result<()> {
    let clicked = page
        .eval(&format!(
            "(() => {{ const b = document.querySelector({sel}); if (!b || b.disabled) return false; b.click(); return true; }})()",
            sel = json!(selector)
        ))
        .await;
    if clicked != json!(true) {
        bail!("nothing enabled to click at {selector}");
    }
    Ok(())
}

/// Wait, up to `limit`, until one of `selectors` matches an element; which
/// one (its index) and that element's text.
async fn first_of(
    page: &Page<'_>,
    selectors: &[String],
    limit: Duration,
) -> anyhow::Result<(usize, String)> {
    let expr = format!(
        r#"new Promise((resolve) => {{
            const sels = {sels};
            const found = () => {{
                for (let i = 0; i < sels.length; i++) {{
                    const e = document.querySelector(sels[i]);
                    if (e) return {{ i, text: e.textContent }};
                }}
                return null;
            }};
            const now = found();
            if (now) return resolve(now);
            const obs = new MutationObserver(() => {{
                const f = found();
                if (f) {{ obs.disconnect(); resolve(f); }}
            }});
            obs.observe(document, {{ subtree: true, childList: true, attributes: true, characterData: true }});
        }})"#,
        sels = json!(selectors)
    );
    match tokio::time::timeout(limit, page.eval(&expr)).await {
        Ok(v) => Ok((
            v["i"].as_u64().unwrap_or(0) as usize,
            v["text"].as_str().unwrap_or_default().trim().to_string(),
        )),
        Err(_) => {
            let body = page
                .eval("document.body ? document.body.innerText : ''")
                .await;
            bail!(
                "the review page showed none of {selectors:?} within {limit:?}; it shows:\n{}",
                body.as_str().unwrap_or_default()
            )
        }
    }
}

async fn save(page: &Page<'_>, shot: &Path) -> anyhow::Result<()> {
    if let Some(dir) = shot.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let _ = std::fs::remove_file(shot);
    let size = page.screenshot(shot).await;
    if size < 10_000 {
        bail!("the screenshot {} is only {size} bytes", shot.display());
    }
    Ok(())
}

/// Open a decided task's evidence page (`#/tasks/{task}`) and read its
/// signed reviews as the page shows them: for each, the vote and the
/// signature check made in the browser. Saves a screenshot to `shot`.
pub async fn reviews_on_task_page(
    base_url: &str,
    task: i64,
    shot: &Path,
) -> anyhow::Result<Vec<(String, String)>> {
    let browser = Browser::launch().ok_or_else(|| anyhow!("no chromium to run the page in"))?;
    let page = browser.open(&format!("{base_url}/#/tasks/{task}")).await;
    // Wait until every row's signature is checked (the check is async).
    first_of(
        &page,
        &["#reviews tbody tr .sig.ok, #reviews tbody tr .sig.bad".to_string()],
        LIMIT,
    )
    .await?;
    let rows = page
        .eval(
            r#"Array.from(document.querySelectorAll('#reviews tbody tr')).map((tr) => ({
                vote: tr.querySelector('.vote').textContent.trim(),
                sig: tr.querySelector('.sig').textContent.trim(),
            }))"#,
        )
        .await;
    save(&page, shot).await?;
    Ok(rows
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["vote"].as_str().unwrap_or_default().to_string(),
                        r["sig"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Open the review page for `seed` while nothing waits, see it say so and
/// wait for work, run `then` (which puts a task in review), and return how
/// many candidates the page shows once the market hands it the review —
/// without the reviewer doing anything.
pub async fn ticket_arrives_in_console<F: std::future::Future<Output = ()>>(
    base_url: &str,
    seed: &str,
    then: F,
) -> anyhow::Result<usize> {
    let browser = Browser::launch().ok_or_else(|| anyhow!("no chromium to run the page in"))?;
    let page = browser
        .open(&format!("{base_url}/#/review?seed={seed}"))
        .await;
    let (which, text) = first_of(
        &page,
        &["#review-waiting".to_string(), "#review-error".to_string()],
        LIMIT,
    )
    .await?;
    if which != 0 {
        bail!("the review page does not wait for work: {text}");
    }
    then.await;
    first_of(&page, &["#review-ticket .candidate".to_string()], LIMIT).await?;
    let n = page
        .eval("document.querySelectorAll('#review-ticket .candidate').length")
        .await;
    Ok(n.as_u64().unwrap_or(0) as usize)
}
