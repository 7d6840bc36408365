//! Instructions per L1 lookup: read-api's mutex map (`bins/read-api/src/cache/local.rs`,
//! its hit-path `get_under`) against `moka::sync::Cache` with a byte weigher and a TTL,
//! same keys and values. Run under callgrind; see Cargo.toml.
use std::{
    collections::{HashMap, VecDeque},
    hint::black_box,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Entry {
    body: Vec<u8>,
}
struct Copy {
    epoch: Arc<str>,
    generation: String,
    entry: Arc<Entry>,
    expires: Instant,
    bytes: usize,
    serial: u64,
}
struct MokaCopy {
    epoch: Arc<str>,
    generation: String,
    entry: Arc<Entry>,
}

#[derive(Default)]
struct Inner {
    copies: HashMap<String, Copy>,
    order: VecDeque<(String, u64)>,
    bytes: usize,
    serial: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kind = args[1].as_str();
    let n: usize = args[2].parse().unwrap();
    let keys: Vec<String> = (0..64)
        .map(|i| format!("vf:{{feed}}:gen newest:20:p{i}"))
        .collect();
    let epoch: Arc<str> = "0123456789abcdef".into();
    let ttl = Duration::from_secs(60);
    let entry = Arc::new(Entry {
        body: vec![b'x'; 12_000],
    });
    match kind {
        "mutex" => {
            let inner = Mutex::new(Inner::default());
            {
                let mut g = inner.lock().unwrap();
                for k in &keys {
                    g.serial += 1;
                    let serial = g.serial;
                    g.copies.insert(
                        k.clone(),
                        Copy {
                            epoch: epoch.clone(),
                            generation: "g1".into(),
                            entry: entry.clone(),
                            expires: Instant::now() + ttl,
                            bytes: 12_000,
                            serial,
                        },
                    );
                    g.order.push_back((k.clone(), serial));
                    g.bytes += 12_000;
                }
            }
            for i in 0..n {
                let key = black_box(keys[i % 8].as_str());
                let g = inner.lock().unwrap();
                let hit = g.copies.get(key).and_then(|c| {
                    (&*c.epoch == "0123456789abcdef"
                        && c.generation == "g1"
                        && Instant::now() < c.expires)
                        .then(|| Arc::clone(&c.entry))
                });
                drop(g);
                black_box(hit.map(|e| e.body.len()));
            }
            black_box(
                inner
                    .lock()
                    .unwrap()
                    .copies
                    .values()
                    .map(|c| c.bytes + c.serial as usize)
                    .sum::<usize>(),
            );
        }
        "moka" => {
            let cache: moka::sync::Cache<String, Arc<MokaCopy>> = moka::sync::Cache::builder()
                .max_capacity(8 << 20)
                .weigher(|k: &String, c: &Arc<MokaCopy>| (k.len() + c.entry.body.len()) as u32)
                .time_to_live(ttl)
                .build();
            for k in &keys {
                cache.insert(
                    k.clone(),
                    Arc::new(MokaCopy {
                        epoch: epoch.clone(),
                        generation: "g1".into(),
                        entry: entry.clone(),
                    }),
                );
            }
            cache.run_pending_tasks();
            for i in 0..n {
                let key = black_box(keys[i % 8].as_str());
                let hit = cache.get(key).and_then(|c| {
                    (&*c.epoch == "0123456789abcdef" && c.generation == "g1")
                        .then(|| Arc::clone(&c.entry))
                });
                black_box(hit.map(|e| e.body.len()));
            }
        }
        _ => panic!("mutex or moka"),
    }
}
