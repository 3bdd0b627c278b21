//! `cargo bench -p matchengine-benches --bench book [-- --quick]`
//!
//! Replays the same pre-generated workloads against MatchEngine's book and
//! peer order books from crates.io, single-threaded, and prints markdown
//! tables: throughput, per-command latency percentiles (HdrHistogram), the
//! ratio to MatchEngine, whether the final books agree, and for a 1M-order
//! book: bytes per resting order and snapshot/restore times.

mod contenders;
mod workload;

use std::hint::black_box;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use matchengine_book::Engine;

use contenders::{Contender, Lobster, MatchEngine, OrderbookRs};
use workload::{Workload, book_building, exchange_core};

struct Measurement {
    name: &'static str,
    commands: usize,
    elapsed: Duration,
    latency_ns: Histogram<u64>,
    tops: Vec<(Option<i64>, Option<i64>)>,
}

impl Measurement {
    fn commands_per_second(&self) -> f64 {
        self.commands as f64 / self.elapsed.as_secs_f64()
    }
}

fn measure<C: Contender>(workload: &Workload) -> Measurement {
    let prefill: Vec<C::Prepared> = workload.prefill.iter().map(C::prepare).collect();
    let ops: Vec<C::Prepared> = workload.ops.iter().map(C::prepare).collect();
    let total_orders = prefill.len() + ops.len();
    // The book's size after prefill, with headroom; a pure build fills up.
    let resting_orders = if prefill.is_empty() {
        ops.len()
    } else {
        prefill.len() * 5 / 4
    };

    // Throughput: no timer calls inside the loop.
    let mut book = C::new(workload.instruments, resting_orders, total_orders);
    prefill.iter().for_each(|op| book.apply(op));
    let start = Instant::now();
    for op in &ops {
        book.apply(black_box(op));
    }
    let elapsed = start.elapsed();
    let tops = (0..workload.instruments).map(|i| book.top(i)).collect();
    if let Some(shape) = book.shape(workload.instruments) {
        println!("{shape}");
    }
    drop(book);

    // Latency: a second, identical run timing each command (the figures
    // include one clock read, ~20 ns).
    let mut latency_ns = Histogram::new_with_bounds(1, 60_000_000_000, 3)
        .unwrap_or_else(|error| panic!("histogram bounds: {error}"));
    let mut book = C::new(workload.instruments, resting_orders, total_orders);
    prefill.iter().for_each(|op| book.apply(op));
    for op in &ops {
        let start = Instant::now();
        book.apply(black_box(op));
        latency_ns.saturating_record(start.elapsed().as_nanos() as u64);
    }
    drop(book);
    Measurement {
        name: C::NAME,
        commands: ops.len(),
        elapsed,
        latency_ns,
        tops,
    }
}

fn print_table(workload: &Workload, results: &[Measurement]) {
    println!(
        "\n### {} ({} commands, {} instruments)\n",
        workload.name,
        workload.ops.len(),
        workload.instruments
    );
    println!(
        "| engine | Mcmd/s | vs matchengine | p50 ns | p99 ns | p99.9 ns | max ns | final books agree |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    let reference = &results[0];
    for result in results {
        let agree = result
            .tops
            .iter()
            .zip(&reference.tops)
            .filter(|(a, b)| a == b)
            .count();
        let h = &result.latency_ns;
        println!(
            "| {} | {:.2} | {:.2}x | {} | {} | {} | {} | {}/{} |",
            result.name,
            result.commands_per_second() / 1e6,
            result.commands_per_second() / reference.commands_per_second(),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max(),
            agree,
            reference.tops.len(),
        );
    }
}

/// Engines to run: all, or the one named by `--engine NAME` (for profiling).
fn engine_wanted(name: &str) -> bool {
    let args: Vec<String> = std::env::args().collect();
    let only = args
        .iter()
        .position(|arg| arg == "--engine")
        .and_then(|i| args.get(i + 1));
    only.is_none_or(|only| name.starts_with(only.as_str()))
}

fn run_all(workload: &Workload, with_orderbook_rs: bool) {
    let mut results = vec![measure::<MatchEngine>(workload)];
    if engine_wanted(Lobster::NAME) {
        results.push(measure::<Lobster>(workload));
    }
    if with_orderbook_rs && engine_wanted(OrderbookRs::NAME) {
        results.push(measure::<OrderbookRs>(workload));
    }
    print_table(workload, &results);
}

/// Bytes per resting order and snapshot costs for a deep book.
fn deep_book(orders: usize) {
    let workload = book_building(orders, 42);
    let commands: Vec<_> = workload.ops.iter().map(MatchEngine::prepare).collect();
    let mut book = MatchEngine::new(1, orders, orders);
    let start = Instant::now();
    commands.iter().for_each(|command| book.apply(command));
    let build = start.elapsed();
    let engine: &Engine = &book.engine;
    let open = engine.open_order_count();

    let start = Instant::now();
    let copy = black_box(engine.clone());
    let clone = start.elapsed();
    drop(copy);
    let start = Instant::now();
    let mut bytes = Vec::new();
    engine.encode_snapshot(&mut bytes);
    let encode = start.elapsed();
    let start = Instant::now();
    let restored =
        Engine::decode_snapshot(&bytes).unwrap_or_else(|error| panic!("decode: {error}"));
    let decode = start.elapsed();
    assert_eq!(
        restored.digest(),
        engine.digest(),
        "restore must keep the digest"
    );
    let start = Instant::now();
    let reads = 1_000;
    for _ in 0..reads {
        black_box(engine.digest());
    }
    let digest_ns = start.elapsed().as_nanos() / reads;

    println!("\n### Deep book: {open} resting orders, one instrument\n");
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| build (place {orders} orders) | {:.0} ms ({:.2} M orders/s) |",
        build.as_secs_f64() * 1e3,
        orders as f64 / build.as_secs_f64() / 1e6
    );
    println!(
        "| memory per resting order (all indexes) | {} bytes |",
        engine.memory_bytes() / open.max(1)
    );
    println!(
        "| snapshot size | {:.1} MB ({} bytes per order) |",
        bytes.len() as f64 / 1e6,
        bytes.len() / open.max(1)
    );
    println!(
        "| point-in-time copy (clone) | {:.0} ms |",
        clone.as_secs_f64() * 1e3
    );
    println!("| snapshot encode | {:.0} ms |", encode.as_secs_f64() * 1e3);
    println!(
        "| snapshot decode + rebuild | {:.0} ms |",
        decode.as_secs_f64() * 1e3
    );
    println!("| digest read | {digest_ns} ns |");

    drop(restored);
    drop(book);
    run_all(&workload, orders <= 200_000);
}

fn main() {
    // cargo passes --bench; --quick shrinks every workload for a smoke run.
    let quick = std::env::args().any(|arg| arg == "--quick");
    let scale = if quick { 10 } else { 1 };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    println!(
        "MatchEngine book benchmark: single thread, {cpu}, {} cores{}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if quick { " (quick)" } else { "" }
    );

    // --only single|multi|deep runs one workload (for profiling).
    let args: Vec<String> = std::env::args().collect();
    let only = args
        .iter()
        .position(|arg| arg == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let wanted = |name: &str| only.as_deref().is_none_or(|only| only == name);
    if wanted("single") {
        let single = exchange_core(
            "exchange-core mix, one instrument, ~1K resting orders",
            1,
            1_000,
            3_000_000 / scale,
            1,
        );
        run_all(&single, true);
    }
    if wanted("multi") {
        let multi = exchange_core(
            "exchange-core mix, 1,000 instruments, ~100 resting orders each",
            1_000,
            100,
            3_000_000 / scale,
            2,
        );
        run_all(&multi, true);
    }
    if wanted("deep") {
        deep_book(1_000_000 / scale);
    }
}
