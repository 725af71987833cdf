//! Network faults every probe must survive, made with real sockets on loopback: a closed port, and a
//! listener that accepts the connection and never says a word. No server stack is needed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use mosaic_health::{
    CheckResult, PgvectorProbe, PostgresProbe, Probe, ServerUrl, StepCaProbe, ValkeyProbe,
    run_probe, run_probes,
};
use tokio::{io::AsyncReadExt, net::TcpListener, sync::mpsc};

mod common;
use common::assert_failed;

/// A port on loopback that nothing listens on (bound, then released).
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// A listener that accepts every connection, reads whatever the client sends, never answers, and
/// reports on `closed` when the client closes its end.
struct SilentListener {
    port: u16,
    closed: mpsc::UnboundedReceiver<()>,
}

async fn silent_listener() -> SilentListener {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, closed) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = [0_u8; 1024];
                while socket.read(&mut buf).await.is_ok_and(|n| n > 0) {}
                let _ = tx.send(());
            });
        }
    });
    SilentListener { port, closed }
}

fn postgres_url(port: u16, password: &str) -> ServerUrl {
    ServerUrl::parse(
        "DATABASE_URL",
        &format!("postgresql://mosaic:{password}@127.0.0.1:{port}/mosaic"),
    )
    .unwrap()
}

fn valkey_url(port: u16) -> ServerUrl {
    ServerUrl::parse(
        "REDIS_URL",
        &format!("redis://:vk-secret-pw@127.0.0.1:{port}"),
    )
    .unwrap()
}

/// Any readable PEM file works: the probe must fail before it ever judges the certificate.
fn some_root() -> std::path::PathBuf {
    common::throwaway_root(
        &tempfile::tempdir().unwrap().keep(),
        "mosaic-health fault test root",
    )
}

#[tokio::test]
async fn a_closed_port_fails_at_once_with_a_remediation() {
    let port = closed_port().await;
    let postgres = PostgresProbe::new(&postgres_url(port, "pg-secret-pw")).unwrap();
    let valkey = ValkeyProbe::new(&valkey_url(port)).unwrap();
    let step_ca = StepCaProbe::new(&format!("https://127.0.0.1:{port}"), some_root()).unwrap();
    let probes: [&dyn Probe; 3] = [&postgres, &valkey, &step_ca];
    let results = run_probes(&probes).await;

    assert_failed(&results[0], "PG_UNREACHABLE");
    assert!(
        results[0]
            .remediation()
            .unwrap()
            .contains("start PostgreSQL")
    );
    assert_failed(&results[1], "VALKEY_UNREACHABLE");
    assert!(results[1].remediation().unwrap().contains("start Valkey"));
    assert_failed(&results[2], "CA_UNREACHABLE");
    assert!(results[2].remediation().unwrap().contains("start step-ca"));
    for result in &results {
        assert_eq!(result.target(), format!("127.0.0.1:{port}"));
        // Refused, not timed out: far below the 5 s default.
        assert!(result.latency() < Duration::from_secs(4), "{result:?}");
        let json = serde_json::to_string(result).unwrap();
        assert!(
            !json.contains("pg-secret-pw") && !json.contains("vk-secret-pw"),
            "{json}"
        );
    }
}

/// Runs `probe` against `listener`, expects a timeout after about `timeout`, and expects the probe's
/// connection to be closed afterwards: nothing the probe started outlives it.
async fn times_out_and_lets_go(
    probe: &dyn Probe,
    listener: &mut SilentListener,
    timeout: Duration,
) {
    let result = run_probe(probe).await;
    assert_failed(&result, "TIMEOUT");
    assert!(result.latency() >= timeout, "{result:?}");
    // Generous: the check is that it does not hang, not how precisely it stops.
    assert!(result.latency() < timeout * 3, "{result:?}");
    assert!(
        result.remediation().unwrap().contains(probe.target()),
        "{result:?}"
    );
    tokio::time::timeout(Duration::from_secs(10), listener.closed.recv())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{}: the probe's connection was still open 10 s after its timeout",
                probe.name()
            )
        });
}

#[tokio::test]
async fn a_silent_postgres_fails_at_the_timeout() {
    let timeout = Duration::from_millis(1500);
    let mut listener = silent_listener().await;
    let probe = PostgresProbe::new(&postgres_url(listener.port, "pg-secret-pw"))
        .unwrap()
        .with_timeout(timeout);
    times_out_and_lets_go(&probe, &mut listener, timeout).await;
    let probe = PgvectorProbe::new(&postgres_url(listener.port, "pg-secret-pw"))
        .unwrap()
        .with_timeout(timeout);
    times_out_and_lets_go(&probe, &mut listener, timeout).await;
}

#[tokio::test]
async fn a_silent_valkey_fails_at_the_timeout() {
    let timeout = Duration::from_millis(1500);
    let mut listener = silent_listener().await;
    let probe = ValkeyProbe::new(&valkey_url(listener.port))
        .unwrap()
        .with_timeout(timeout);
    times_out_and_lets_go(&probe, &mut listener, timeout).await;
}

#[tokio::test]
async fn a_silent_step_ca_fails_at_the_timeout() {
    let timeout = Duration::from_millis(1500);
    let mut listener = silent_listener().await;
    let probe = StepCaProbe::new(&format!("https://127.0.0.1:{}", listener.port), some_root())
        .unwrap()
        .with_timeout(timeout);
    times_out_and_lets_go(&probe, &mut listener, timeout).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_run_concurrently_so_a_report_takes_about_the_slowest() {
    // Four probes that each wait their full timeout behind a silent listener: sequentially that is the
    // sum (10 s); concurrently about the slowest (3 s). The margin is wide on purpose.
    let listener = silent_listener().await;
    let slow = Duration::from_secs(3);
    let fast = Duration::from_secs(2);
    let postgres = PostgresProbe::new(&postgres_url(listener.port, "pw"))
        .unwrap()
        .with_timeout(slow);
    let pgvector = PgvectorProbe::new(&postgres_url(listener.port, "pw"))
        .unwrap()
        .with_timeout(fast);
    let valkey = ValkeyProbe::new(&valkey_url(listener.port))
        .unwrap()
        .with_timeout(fast);
    let step_ca = StepCaProbe::new(&format!("https://127.0.0.1:{}", listener.port), some_root())
        .unwrap()
        .with_timeout(fast);
    let probes: [&dyn Probe; 4] = [&postgres, &pgvector, &valkey, &step_ca];

    let started = Instant::now();
    let results = run_probes(&probes).await;
    let wall = started.elapsed();

    let names: Vec<_> = results.iter().map(CheckResult::name).collect();
    assert_eq!(
        names,
        ["postgres", "pgvector", "valkey", "step-ca"],
        "results keep the given order"
    );
    assert!(
        results.iter().all(|r| r.code() == Some("TIMEOUT")),
        "{results:?}"
    );
    let slowest = results.iter().map(CheckResult::latency).max().unwrap();
    let sum: Duration = results.iter().map(CheckResult::latency).sum();
    assert!(slowest >= slow, "{results:?}");
    assert!(wall >= slowest, "wall {wall:?} < slowest {slowest:?}");
    assert!(
        wall.as_secs_f64() < 1.6 * slowest.as_secs_f64(),
        "wall {wall:?} vs slowest {slowest:?}: not concurrent"
    );
    assert!(wall < sum / 2, "wall {wall:?} vs sum {sum:?}");
}
