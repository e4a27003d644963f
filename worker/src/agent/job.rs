//! One assignment, from claim to signed result (or reported failure).

use std::io::Cursor;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tally_protocol::signing::now_ms;
use tally_protocol::wire::{Assignment, ResultRequest};
use tally_protocol::{labels, AssignmentId, Client, Detection};
use tokio::sync::watch;

use super::models::{Models, Unusable};
use super::retry::{is_transient, retry};
use super::total_earned;
use crate::detector::MAX_IMAGE_SIDE;
use crate::one_line;
use crate::sandbox::{InferError, Sandbox};

/// The longest failure reason the market accepts.
const MAX_REASON: usize = 1000;

/// What one assignment task shares with the others.
pub(super) struct Shared {
    pub(super) client: Client,
    pub(super) models: Models,
    pub(super) sandbox: Sandbox,
    pub(super) faulty: bool,
    pub(super) pause_after_claim: Option<Duration>,
    pub(super) results: AtomicU64,
    pub(super) failures: AtomicU64,
    pub(super) earned: AtomicI64,
}

/// What became of one assignment.
enum Done {
    Submitted,
    /// The assignment cannot run here; tell the market why.
    Failed(String),
    /// The lease is gone (expired, cancelled) or the market refused: nothing to do.
    Dropped,
    /// The grace period ran out.
    Aborted,
}

/// Runs one assignment to its end, heartbeating meanwhile.
pub(super) async fn work_on(shared: &Shared, a: Assignment, abort: watch::Receiver<bool>) {
    let id = a.assignment;
    tracing::info!(assignment = %id, task = %a.task, price = a.price.0, "claimed assignment");
    let running = attempt(shared, &a, abort);
    tokio::pin!(running);
    let done = tokio::select! {
        done = &mut running => done,
        lost = keep_leased(&shared.client, id, a.lease_expires_at.timestamp_millis()) => {
            if is_own_submission(&lost) {
                // The heartbeat crossed our own result: the market has it,
                // and the submission's answer is on its way.
                running.await
            } else {
                tracing::warn!(assignment = %id, "lease lost ({lost}); dropping the task");
                Done::Dropped
            }
        }
    };
    let reason = match done {
        Done::Submitted | Done::Dropped => return,
        Done::Failed(reason) => reason,
        Done::Aborted => "the worker is shutting down".to_string(),
    };
    let reason: String = reason.chars().take(MAX_REASON).collect();
    shared.failures.fetch_add(1, Ordering::SeqCst);
    let reported = tokio::time::timeout(
        Duration::from_secs(10),
        shared.client.report_failure(id, &reason),
    )
    .await;
    match reported {
        Ok(Ok(_)) => tracing::warn!(assignment = %id, task = %a.task, %reason, "reported failure"),
        Ok(Err(e)) => {
            tracing::warn!(assignment = %id, %reason, "could not report failure: {}", one_line(&e))
        }
        Err(_) => tracing::warn!(assignment = %id, %reason, "could not report failure: timed out"),
    }
}

/// One try at an assignment: fetch the model and the input, infer, submit.
async fn attempt(shared: &Shared, a: &Assignment, abort: watch::Receiver<bool>) -> Done {
    let client = &shared.client;
    let id = a.assignment;
    if let Some(pause) = shared.pause_after_claim {
        let mut abort_wait = abort.clone();
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = abort_wait.wait_for(|s| *s) => return Done::Aborted,
        }
    }
    let model = match shared.models.get(client, &a.model).await {
        Ok(bytes) => bytes,
        Err(Unusable::Refused(why) | Unusable::Unavailable(why)) => return Done::Failed(why),
    };
    let input = match retry("fetching an input", &abort, || client.input(&a.input)).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Done::Aborted,
        Err(e) => {
            tracing::warn!(assignment = %id, "cannot fetch the input: {e}");
            return Done::Dropped;
        }
    };
    match infer(shared, a, &model, &input, &abort).await {
        Ok(output) => submit(shared, a, output, &abort).await,
        Err(done) => done,
    }
}

/// Run the model on the input in a sandbox child and check what it says:
/// the image's size as read here, sane detections.
async fn infer(
    shared: &Shared,
    a: &Assignment,
    model: &std::sync::Arc<Vec<u8>>,
    input: &[u8],
    abort: &watch::Receiver<bool>,
) -> Result<crate::sandbox::Detected, Done> {
    // The image's size, read here from its header: the child's word is not taken for it.
    let Some((width, height)) = image_size(input) else {
        return Err(Done::Failed(
            "undecodable image: cannot read its size".into(),
        ));
    };
    let mut abort_wait = abort.clone();
    let output = tokio::select! {
        r = shared.sandbox.detect(&a.model, model, input) => r,
        _ = abort_wait.wait_for(|s| *s) => return Err(Done::Aborted),
    };
    let output = match output {
        Ok(out) => out,
        Err(InferError::Model(why)) => {
            shared.models.refuse(&a.model, &why);
            return Err(Done::Failed(format!("model error: {why}")));
        }
        Err(InferError::Input(why)) => return Err(Done::Failed(why)),
        Err(InferError::Child(why)) => return Err(Done::Failed(why)),
    };
    if (output.width, output.height) != (width, height) {
        return Err(Done::Failed(format!(
            "the inference child reported a {}x{} image for a {width}x{height} one",
            output.width, output.height
        )));
    }
    if let Err(insane) = crate::sanity::check(&output.detections, width, height) {
        return Err(Done::Failed(format!("unusable model output: {insane}")));
    }
    Ok(output)
}

/// Submit the signed result (sabotaged when the worker is faulty) and log
/// what it earned.
async fn submit(
    shared: &Shared,
    a: &Assignment,
    output: crate::sandbox::Detected,
    abort: &watch::Receiver<bool>,
) -> Done {
    let (client, id) = (&shared.client, a.assignment);
    let detections = if shared.faulty {
        sabotage(output.detections)
    } else {
        output.detections
    };
    let body = ResultRequest {
        detections,
        elapsed_ms: output.elapsed_ms,
    };
    let outcome = match retry("submitting a result", abort, || {
        client.submit_result(id, &body)
    })
    .await
    {
        Ok(Some(outcome)) => outcome,
        Ok(None) => return Done::Aborted,
        Err(e) => {
            tracing::warn!(assignment = %id, "result refused: {e}");
            return Done::Dropped;
        }
    };
    let results = shared.results.fetch_add(1, Ordering::SeqCst) + 1;
    let mut credibility = None;
    if let Ok(me) = client.account_me().await {
        shared.earned.store(total_earned(&me).0, Ordering::SeqCst);
        credibility = Some(me.credibility);
    }
    tracing::info!(
        assignment = %id,
        task = %a.task,
        status = %outcome.status,
        task_status = outcome.task_status.as_str(),
        detections = body.detections.len(),
        elapsed_ms = output.elapsed_ms.round() as u64,
        results,
        credibility = credibility.map(|c| format!("{c:.4}")).unwrap_or_default(),
        "submitted result; earned {} stroops so far",
        shared.earned.load(Ordering::SeqCst)
    );
    Done::Submitted
}

/// The pixel size in an image's header, without decoding it; `None` when
/// it is not an image or is larger than any worker decodes.
fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let (w, h) = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()?;
    (w <= MAX_IMAGE_SIDE && h <= MAX_IMAGE_SIDE).then_some((w, h))
}

/// A heartbeat refused because this worker's own result (or failure
/// report) for the assignment is already in: only this worker can finish it.
fn is_own_submission(e: &tally_protocol::Error) -> bool {
    matches!(e, tally_protocol::Error::Api { status: 409, code, .. } if code == "already_finished")
}

/// Extends the lease every third of its remaining time; returns only when it is lost.
async fn keep_leased(
    client: &Client,
    id: AssignmentId,
    mut expires_ms: i64,
) -> tally_protocol::Error {
    loop {
        let remaining = expires_ms - now_ms();
        let every = if remaining > 0 {
            Duration::from_millis(remaining as u64 / 3)
                .clamp(Duration::from_millis(100), Duration::from_secs(60))
        } else {
            // Our clock is ahead of the market's: keep trying at a modest pace.
            Duration::from_secs(1)
        };
        tokio::time::sleep(every).await;
        match client.heartbeat(id).await {
            Ok(lease) => {
                expires_ms = lease.lease_expires_at.timestamp_millis();
                tracing::debug!(assignment = %id, until = %lease.lease_expires_at, "lease extended");
            }
            Err(e) if is_transient(&e) => {
                tracing::warn!(assignment = %id, "heartbeat failed, retrying: {}", one_line(&e))
            }
            Err(e) => return e,
        }
    }
}

/// Deliberately wrong detections: every box moved 200 px and given the next
/// class; an empty answer gets one made-up person.
pub fn sabotage(detections: Vec<Detection>) -> Vec<Detection> {
    if detections.is_empty() {
        return vec![Detection {
            class_id: 0,
            label: labels::label(0).to_string(),
            score: 0.9,
            bbox: [10.0, 10.0, 60.0, 130.0],
        }];
    }
    detections
        .into_iter()
        .map(|d| {
            let class_id = (d.class_id + 1) % 80;
            let [x1, y1, x2, y2] = d.bbox;
            Detection {
                class_id,
                label: labels::label(class_id).to_string(),
                score: d.score,
                bbox: [x1 + 200.0, y1 + 200.0, x2 + 200.0, y2 + 200.0],
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sabotaged_detections_never_match_the_honest_ones() {
        let honest = vec![Detection {
            class_id: 16,
            label: "dog".into(),
            score: 0.83,
            bbox: [133.0, 207.0, 324.0, 542.0],
        }];
        let wrong = sabotage(honest.clone());
        assert_eq!(wrong.len(), 1);
        assert_eq!(wrong[0].class_id, 17);
        assert_eq!(wrong[0].label, "horse");
        assert!(wrong[0].is_well_formed());
        assert!(tally_protocol::iou(&wrong[0].bbox, &honest[0].bbox) < 0.5);
        let made_up = sabotage(Vec::new());
        assert_eq!(made_up.len(), 1);
        assert!(made_up[0].is_well_formed());
    }
}
