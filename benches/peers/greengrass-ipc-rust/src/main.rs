//! greengrass-ipc-rust (the published async crate, on tokio's multi-threaded runtime with
//! its default worker count) as a contender of the side-by-side benchmark. Speaks the
//! line protocol of `../../protocol.rs`.

#[path = "../../protocol.rs"]
mod protocol;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use greengrass_ipc_rust::GreengrassCoreIPCClient;
use protocol::{say, Command, EVENTS_TIMEOUT};

fn main() {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return say(&format!("error runtime: {e}")),
    };
    let client = match rt.block_on(GreengrassCoreIPCClient::connect()) {
        Ok(c) => Arc::new(c),
        Err(e) => return say(&format!("error connect: {e}")),
    };
    let payload = protocol::payload();
    say("ready");
    for command in protocol::commands() {
        let answer = match command {
            Command::Rtt { n, topic } => rt.block_on(rtt(&client, n, &topic, &payload)),
            Command::Pipelined {
                threads,
                secs,
                topic,
            } => rt.block_on(pipelined(&client, threads, secs, &topic, &payload)),
            Command::Events {
                publishers,
                total,
                topic,
            } => rt.block_on(events(&client, publishers, total, &topic, &payload)),
        };
        match answer {
            Ok(line) => say(&line),
            Err(e) => say(&format!("error {e}")),
        }
    }
    let _ = rt.block_on(client.close());
}

async fn rtt(
    client: &GreengrassCoreIPCClient,
    n: usize,
    topic: &str,
    payload: &[u8],
) -> Result<String, String> {
    let mut lat = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let t = Instant::now();
        client
            .publish_to_topic(topic, payload.to_vec())
            .await
            .map_err(|e| e.to_string())?;
        if i >= n / 10 {
            lat.push(t.elapsed().as_nanos() as u64);
        }
    }
    Ok(protocol::rtt_line(lat))
}

async fn pipelined(
    client: &Arc<GreengrassCoreIPCClient>,
    tasks: usize,
    secs: f64,
    topic: &str,
    payload: &[u8],
) -> Result<String, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (client, stop) = (client.clone(), stop.clone());
            let (topic, payload) = (topic.to_owned(), payload.to_vec());
            tokio::spawn(async move {
                let mut ops = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    client
                        .publish_to_topic(&topic, payload.clone())
                        .await
                        .map_err(|e| e.to_string())?;
                    ops += 1;
                }
                Ok::<u64, String>(ops)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut ops = 0;
    for h in handles {
        ops += h.await.map_err(|e| e.to_string())??;
    }
    Ok(format!(
        "pipelined {ops} {:.6}",
        start.elapsed().as_secs_f64()
    ))
}

async fn events(
    client: &Arc<GreengrassCoreIPCClient>,
    publishers: usize,
    total: usize,
    topic: &str,
    payload: &[u8],
) -> Result<String, String> {
    let mut subscription = client
        .subscribe_to_topic(topic)
        .await
        .map_err(|e| e.to_string())?;
    let per = total / publishers;
    let total = per * publishers;
    let seen = Arc::new(AtomicU64::new(0));
    let counter = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while seen.load(Ordering::Relaxed) < total as u64 {
                if subscription.recv().await.is_none() {
                    break;
                }
                seen.fetch_add(1, Ordering::Relaxed);
            }
            let end = Instant::now();
            (subscription, end)
        })
    };
    let start = Instant::now();
    let pubs: Vec<_> = (0..publishers)
        .map(|_| {
            let client = client.clone();
            let (topic, payload) = (topic.to_owned(), payload.to_vec());
            tokio::spawn(async move {
                for _ in 0..per {
                    client
                        .publish_to_topic(&topic, payload.clone())
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for p in pubs {
        p.await.map_err(|e| e.to_string())??;
    }
    let (end, subscription) = match tokio::time::timeout(EVENTS_TIMEOUT, counter).await {
        Ok(Ok((subscription, end))) => (end, Some(subscription)),
        _ => (Instant::now(), None),
    };
    if let Some(s) = subscription {
        let _ = s.close().await;
    }
    Ok(format!(
        "events {} {:.6} 0",
        seen.load(Ordering::Relaxed),
        (end - start).as_secs_f64()
    ))
}
