//! A write load spread over several servers: invitations, role changes, deployments (and
//! reads), each answer recorded with when it came.

use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Invite,
    ChangeRole,
    Deploy,
    Me,
}

#[derive(Debug)]
pub struct Outcome {
    /// Which target (index in the list given to [`Load::start`]).
    pub target: usize,
    pub op: Op,
    pub sent: Instant,
    pub answered: Instant,
    /// Status and body, or the transport error (connection cut, client timeout).
    pub result: Result<(u16, Value), String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        matches!(&self.result, Ok((s, _)) if (200..300).contains(s))
    }
    /// The created resource's id (invitations, deployments).
    pub fn id(&self) -> Option<String> {
        match &self.result {
            Ok((_, body)) if self.ok() => body["id"].as_str().map(str::to_owned),
            _ => None,
        }
    }
}

/// What the load works on.
#[derive(Clone)]
pub struct Workload {
    pub token: String,
    pub members: Vec<String>,
    pub model: String,
    pub ops: Vec<Op>,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<Vec<Outcome>>>,
}

/// A request that hangs longer than this is recorded as a failure ("never hangs").
pub const HANG: Duration = Duration::from_secs(30);

impl Load {
    /// `workers` concurrent loops per target base URL.
    pub fn start(targets: &[String], workers: usize, work: &Workload) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let counter = Arc::new(AtomicUsize::new(0));
        let client = reqwest::Client::builder().timeout(HANG).build().unwrap();
        let mut handles = Vec::new();
        for (target, base) in targets.iter().enumerate() {
            for _ in 0..workers {
                let (stop, counter, client) = (stop.clone(), counter.clone(), client.clone());
                let (base, work) = (base.clone(), work.clone());
                handles.push(tokio::spawn(async move {
                    let mut outcomes = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        let n = counter.fetch_add(1, Ordering::SeqCst);
                        let op = work.ops[n % work.ops.len()];
                        let sent = Instant::now();
                        let result = send(&client, &base, &work, op, n).await;
                        if result.is_err() {
                            // A dead server refuses at once: do not spin.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        outcomes.push(Outcome {
                            target,
                            op,
                            sent,
                            answered: Instant::now(),
                            result,
                        });
                    }
                    outcomes
                }));
            }
        }
        Load {
            stop,
            workers: handles,
        }
    }

    pub async fn stop(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Vec::new();
        for worker in self.workers {
            all.extend(worker.await.unwrap());
        }
        all
    }
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    work: &Workload,
    op: Op,
    n: usize,
) -> Result<(u16, Value), String> {
    let request = match op {
        Op::Invite => client
            .post(format!("{base}/organizations/current/invitations"))
            .json(&json!({"email": format!("guest-{n}@chaos.test"), "role": "user"})),
        Op::ChangeRole => {
            let member = &work.members[n % work.members.len()];
            let role = if (n / work.members.len()).is_multiple_of(2) {
                "manager"
            } else {
                "user"
            };
            client
                .put(format!("{base}/organizations/current/members/{member}"))
                .json(&json!({ "role": role }))
        }
        Op::Deploy => client
            .post(format!("{base}/deployments"))
            .json(&json!({"model_id": work.model})),
        Op::Me => client.get(format!("{base}/auth/me")),
    };
    let res = request
        .bearer_auth(&work.token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let text = res.text().await.map_err(|e| e.to_string())?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// Counts by (op, status or "cut") for the test's output.
pub fn summary(outcomes: &[Outcome]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for o in outcomes {
        let status = match &o.result {
            Ok((s, _)) => s.to_string(),
            Err(_) => "cut".to_owned(),
        };
        *counts
            .entry(format!("target {} {:?} {status}", o.target, o.op))
            .or_insert(0) += 1;
    }
    format!("{counts:#?}")
}
