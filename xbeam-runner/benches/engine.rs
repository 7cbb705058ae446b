//! Engine overheads: the fixed cost of a run, per-element cost of a map, and shuffle throughput of
//! 16 MB elements in one process with 2 workers and across 2 processes on
//! loopback (this binary re-runs itself as the second process).

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{criterion_group, Criterion, Throughput};
use xbeam_runner::{Pipeline, Runner};

const N: u64 = 200_000;
const BIG: usize = 16 << 20;
const BIG_COUNT: u64 = 32;

fn small(with_map: bool) {
    let p = Pipeline::new();
    let s = p.source("numbers", N, Ok::<_, String>);
    let s = if with_map {
        s.map("add", |x| Ok::<_, String>(x + 1))
    } else {
        s
    };
    s.for_each("sink", |_x| Ok::<_, String>(()));
    p.run(&Runner::local_with_workers(1).quiet()).unwrap();
}

/// A run of one element: the fixed cost of starting and stopping a run.
fn one_element() {
    let p = Pipeline::new();
    let out = p.create("one", vec![1u64]).collect("out");
    p.run(&Runner::local_with_workers(1).quiet()).unwrap();
    assert_eq!(out.take().unwrap(), vec![1]);
}

fn shuffle(runner: &Runner, count: u64) {
    let p = Pipeline::new();
    // raw bytes (serde_bytes), as array chunks travel (xbeam-chunk's wire form)
    p.source("big", count, |i| {
        Ok::<_, String>((i, serde_bytes::ByteBuf::from(vec![0u8; BIG])))
    })
    .reshuffle("shuffle")
    .for_each("sink", |(_, v): (u64, serde_bytes::ByteBuf)| {
        if v.len() == BIG {
            Ok(())
        } else {
            Err("wrong size")
        }
    });
    p.run(runner).unwrap();
}

fn free_ports(n: usize) -> Vec<String> {
    let ls: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    ls.iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect()
}

fn engine(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    g.sample_size(10);
    g.bench_function("one_element_run", |b| b.iter(one_element));
    g.throughput(Throughput::Elements(N));
    g.bench_function("source_sink_200k", |b| b.iter(|| small(false)));
    g.bench_function("source_map_sink_200k", |b| b.iter(|| small(true)));
    g.throughput(Throughput::Bytes(BIG_COUNT * BIG as u64));
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("shuffle_16mb_1_process_2_workers", |b| {
        b.iter(|| shuffle(&Runner::local_with_workers(2).quiet(), BIG_COUNT));
    });
    // a cluster run includes starting the second process and connecting;
    // the setup alone is measured with no data, so the difference is the
    // shuffle
    for (name, count) in [
        ("cluster_setup_2_processes", 0),
        ("shuffle_16mb_2_processes_1_worker_each", BIG_COUNT),
    ] {
        g.throughput(Throughput::Bytes(count * BIG as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let hosts = free_ports(2);
                let mut child = Command::new(std::env::current_exe().unwrap())
                    .env("XBEAM_BENCH_CHILD", format!("{count};{}", hosts.join(",")))
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap();
                shuffle(&Runner::cluster(hosts, 0, 1).quiet(), count);
                assert!(child.wait().unwrap().success());
            });
        });
    }
    g.finish();
}

criterion_group!(benches, engine);

fn main() {
    if let Ok(spec) = std::env::var("XBEAM_BENCH_CHILD") {
        let (count, hosts) = spec.split_once(';').expect("count;hosts");
        let hosts: Vec<String> = hosts.split(',').map(String::from).collect();
        shuffle(
            &Runner::cluster(hosts, 1, 1).quiet(),
            count.parse().expect("a count"),
        );
        return;
    }
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
