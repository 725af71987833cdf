//! `mosaic-health`'s runner against its reference, in the same run: a report should take about as long as
//! its slowest probe, not the sum.
//!
//! - `health-report/4x10ms`: four probes whose check sleeps 10 ms.
//!   - `concurrent run_probes` is [`mosaic_health::run_probes`] (what `HealthReport::run` and the doctor use);
//!   - reference `sequential run_probe` awaits [`mosaic_health::run_probe`] for each probe in turn.
//! - `health-report/closed-port`: the real PostgreSQL, Valkey and step-ca probes against a closed loopback
//!   port (refused at once), so the figure is the probes' own cost: driver setup, connect attempt,
//!   error classification and redaction; same two variants.
//!
//! Run: `cargo bench -p mosaic-benches --bench health`. Medians and ratios: crates/mosaic-health/README.md.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use mosaic_health::{
    PostgresProbe, Probe, ProbeFuture, ServerUrl, StepCaProbe, ValkeyProbe, run_probe, run_probes,
};

/// A probe whose check takes `sleep`.
struct Sleeper(Duration);

impl Probe for Sleeper {
    fn name(&self) -> &str {
        "sleeper"
    }
    fn target(&self) -> &str {
        "loopback"
    }
    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            tokio::time::sleep(self.0).await;
            Ok(None)
        })
    }
}

async fn sequential(probes: &[&dyn Probe]) -> usize {
    let mut passed = 0;
    for probe in probes {
        passed += usize::from(run_probe(*probe).await.ok());
    }
    passed
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn sleepers(c: &mut Criterion) {
    let rt = runtime();
    let owned: Vec<Sleeper> = (0..4).map(|_| Sleeper(Duration::from_millis(10))).collect();
    let probes: Vec<&dyn Probe> = owned.iter().map(|p| p as &dyn Probe).collect();
    assert_eq!(
        rt.block_on(run_probes(&probes))
            .iter()
            .filter(|r| r.ok())
            .count(),
        4
    );
    assert_eq!(rt.block_on(sequential(&probes)), 4);

    let mut group = c.benchmark_group("health-report/4x10ms");
    group.sample_size(30);
    group.bench_function("concurrent run_probes", |b| {
        b.iter(|| rt.block_on(run_probes(black_box(&probes))))
    });
    group.bench_function("reference: sequential run_probe", |b| {
        b.iter(|| rt.block_on(sequential(black_box(&probes))))
    });
    group.finish();
}

fn closed_port(c: &mut Criterion) {
    let rt = runtime();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let root = std::env::temp_dir().join(format!(
        "mosaic-health-bench-root-{}.crt",
        std::process::id()
    ));
    let bench_root = mosaic_ca_client::ServerCa::generate("bench root").unwrap();
    std::fs::write(&root, bench_root.root_pem().unwrap()).unwrap();

    let database = ServerUrl::parse(
        "DATABASE_URL",
        &format!("postgresql://m:pw@127.0.0.1:{port}/m"),
    )
    .unwrap();
    let queue = ServerUrl::parse("REDIS_URL", &format!("redis://127.0.0.1:{port}")).unwrap();
    let postgres = PostgresProbe::new(&database).unwrap();
    let valkey = ValkeyProbe::new(&queue).unwrap();
    let step_ca = StepCaProbe::new(&format!("https://127.0.0.1:{port}"), &root).unwrap();
    let probes: [&dyn Probe; 3] = [&postgres, &valkey, &step_ca];
    let codes: Vec<_> = rt
        .block_on(run_probes(&probes))
        .iter()
        .map(|r| r.code())
        .collect();
    assert_eq!(
        codes,
        [
            Some("PG_UNREACHABLE"),
            Some("VALKEY_UNREACHABLE"),
            Some("CA_UNREACHABLE")
        ]
    );

    let mut group = c.benchmark_group("health-report/closed-port");
    group.bench_function("concurrent run_probes", |b| {
        b.iter(|| rt.block_on(run_probes(black_box(&probes))))
    });
    group.bench_function("reference: sequential run_probe", |b| {
        b.iter(|| rt.block_on(sequential(black_box(&probes))))
    });
    group.finish();
    let _ = std::fs::remove_file(root);
}

criterion_group!(benches, sleepers, closed_port);
criterion_main!(benches);
