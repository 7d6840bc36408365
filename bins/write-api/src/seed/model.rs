//! The random model of the demo catalogue: tags, titles, descriptions, dates
//! and views, written as COPY binary tuples.

use std::io::Write as _;

use chrono::{DateTime, TimeDelta, Utc};
use rand::{
    distr::{weighted::WeightedIndex, Distribution},
    rngs::SmallRng,
    seq::IndexedRandom,
    Rng, SeedableRng,
};
use uuid::Uuid;

use super::binary::Tuple;

/// How far back the catalogue goes.
const HISTORY: TimeDelta = TimeDelta::days(730);
const DRAFT_RATIO: f64 = 0.05;
const CDN: &str = "https://cdn.videofeed.example";

/// The tag vocabulary, most popular first (popularity falls off as 1/rank),
/// each with the word titles use for it.
pub const TAGS: [(&str, &str); 30] = [
    ("streetwear", "Streetwear"),
    ("summer", "Summer"),
    ("outfit-ideas", "Everyday"),
    ("haul", "Try-on"),
    ("minimalist", "Minimalist"),
    ("vintage", "Vintage"),
    ("denim", "Denim"),
    ("sneakers", "Sneaker"),
    ("winter", "Winter"),
    ("workwear", "Office"),
    ("accessories", "Accessory"),
    ("autumn", "Autumn"),
    ("spring", "Spring"),
    ("thrift", "Thrifted"),
    ("capsule-wardrobe", "Capsule"),
    ("menswear", "Menswear"),
    ("athleisure", "Athleisure"),
    ("linen", "Linen"),
    ("evening", "Evening"),
    ("sustainable", "Sustainable"),
    ("knitwear", "Knitwear"),
    ("jewelry", "Jewelry"),
    ("outerwear", "Outerwear"),
    ("y2k", "Y2K"),
    ("boho", "Boho"),
    ("wedding-guest", "Wedding guest"),
    ("tailoring", "Tailored"),
    ("runway", "Runway"),
    ("festival", "Festival"),
    ("resort", "Resort"),
];

/// Garments, with the article they take (none for plurals).
const ITEMS: [(&str, &str); 24] = [
    ("a linen shirt", "linen shirt"),
    ("a trench coat", "trench coat"),
    ("wide-leg trousers", "wide-leg trousers"),
    ("a slip dress", "slip dress"),
    ("a denim jacket", "denim jacket"),
    ("chunky sneakers", "chunky sneakers"),
    ("a cashmere sweater", "cashmere sweater"),
    ("leather boots", "leather boots"),
    ("a pleated skirt", "pleated skirt"),
    ("an oversized blazer", "oversized blazer"),
    ("a silk scarf", "silk scarf"),
    ("cargo pants", "cargo pants"),
    ("a white tee", "white tee"),
    ("a midi dress", "midi dress"),
    ("a puffer jacket", "puffer jacket"),
    ("loafers", "loafers"),
    ("a tote bag", "tote bag"),
    ("gold hoops", "gold hoops"),
    ("a knit vest", "knit vest"),
    ("a bucket hat", "bucket hat"),
    ("straight-leg jeans", "straight-leg jeans"),
    ("a shirt dress", "shirt dress"),
    ("a bomber jacket", "bomber jacket"),
    ("ballet flats", "ballet flats"),
];

const OCCASIONS: [&str; 10] = [
    "work",
    "a wedding",
    "date night",
    "the weekend",
    "travel",
    "brunch",
    "a festival",
    "the office",
    "a night out",
    "running errands",
];

const OPENINGS: [&str; 8] = [
    "Three looks built around {a_item}, from {occasion} to late dinner.",
    "Everything in this video comes from my own closet, including the {item}.",
    "A quick guide to wearing the {item} for {occasion}, with fit tips.",
    "We asked our stylists how they would wear {a_item} this season.",
    "How to make the {item} feel new this season.",
    "Five minutes, {a_item}, endless combinations.",
    "Styling notes for {occasion}: proportions, colour and the {item}.",
    "From flat lay to full outfit, built around the {item}.",
];

const CLOSINGS: [&str; 8] = [
    "Links to every piece are in the app.",
    "Tell us which look is your favourite.",
    "Sizes run small, so consider sizing up.",
    "Most pieces are second-hand or vintage.",
    "Shot in natural light, no filters.",
    "Save it for your next shopping trip.",
    "New videos every week.",
    "Care tips are at the end.",
];

/// The random model of the catalogue.
pub(super) struct Rows {
    rng: SmallRng,
    now: DateTime<Utc>,
    total: u64,
    tag_popularity: WeightedIndex<f64>,
    tag_count: WeightedIndex<u32>,
}

impl Rows {
    pub(super) fn new(now: DateTime<Utc>, total: u64) -> Self {
        Self {
            rng: SmallRng::from_rng(&mut rand::rng()),
            now,
            total,
            tag_popularity: zipf_weights(TAGS.len()),
            // 1, 2, 3 or 4 tags.
            tag_count: weights(&[35, 35, 20, 10]),
        }
    }

    /// Appends row `index` as a COPY binary tuple of [`super::COPY_STATEMENT`]'s
    /// columns; returns whether it is a draft.
    pub(super) fn write(&mut self, index: u64, out: &mut Vec<u8>) -> bool {
        let rng = &mut self.rng;

        // Stratified over the history, index order = time order, with
        // density growing towards now (age ∝ (1 - q)^1.3).
        let q = (index as f64 + rng.random::<f64>()) / self.total.max(1) as f64;
        let age_seconds = HISTORY.num_seconds() as f64 * (1.0 - q).max(0.0).powf(1.3);
        let created_at = self.now - seconds(age_seconds);
        let draft = rng.random_bool(DRAFT_RATIO);
        let published_at = (!draft).then(|| {
            // Edited for a few minutes to a few days before going live, and
            // live by now.
            let lag = 300.0 + 259_200.0 * rng.random::<f64>().powi(3);
            let so_far = (self.now - created_at).num_microseconds().unwrap_or(0) as f64 / 1e6;
            created_at + seconds(lag.min(so_far * rng.random::<f64>()))
        });
        let last_change = published_at.unwrap_or(created_at);
        let updated_at = if rng.random_bool(0.15) {
            let edited_after = (self.now - last_change).num_seconds() as f64 * rng.random::<f64>();
            last_change + seconds(edited_after)
        } else {
            last_change
        };

        let mut tags: Vec<usize> = Vec::with_capacity(4);
        let wanted = self.tag_count.sample(rng) + 1;
        while tags.len() < wanted {
            let tag = self.tag_popularity.sample(rng);
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }

        // Views: a Lomax (Pareto) tail, the way a few videos take most views;
        // recent videos have not caught up yet.
        let view_count = match published_at {
            None => 0,
            Some(published) => {
                let tail = 120.0 * (rng.random::<f64>().max(1e-12).powf(-1.0 / 1.15) - 1.0);
                let days_live = (self.now - published).num_seconds() as f64 / 86_400.0;
                let maturity = 0.1 + 0.9 * (days_live / 30.0).min(1.0);
                (tail * maturity).min(50_000_000.0) as i64
            }
        };
        // Short videos dominate.
        let duration = 15 + (885.0 * rng.random::<f64>().powi(2)).round() as i32;

        let id = time_ordered_id(created_at, rng.random());
        let item = *ITEMS.choose(rng).unwrap_or(&ITEMS[0]);
        let occasion = *OCCASIONS.choose(rng).unwrap_or(&OCCASIONS[0]);
        let theme = TAGS[tags[0]].1;

        let mut tuple = Tuple::start(out, 12);
        tuple.uuid(id);
        tuple.field(|out| Self::write_title(rng, out, theme, item, occasion));
        tuple.field(|out| Self::write_description(rng, out, item, occasion));
        tuple.field(|out| {
            let _ = write!(out, "{CDN}/v/{id}.mp4");
        });
        if rng.random_bool(0.03) {
            tuple.null();
        } else {
            tuple.field(|out| {
                let _ = write!(out, "{CDN}/t/{id}.jpg");
            });
        }
        tuple.int4(duration);
        tuple.text_array(tags.iter().map(|tag| TAGS[*tag].0));
        tuple.int8(view_count);
        tuple.text(if draft { "draft" } else { "published" });
        match published_at {
            Some(at) => tuple.timestamptz(at),
            None => tuple.null(),
        }
        tuple.timestamptz(created_at);
        tuple.timestamptz(updated_at);
        draft
    }

    fn write_title(
        rng: &mut SmallRng,
        out: &mut Vec<u8>,
        theme: &str,
        item: (&str, &str),
        occasion: &str,
    ) {
        let (a_item, item) = item;
        let n = rng.random_range(3..=7);
        let _ = match rng.random_range(0..10) {
            0 => write!(out, "{n} ways to style {a_item}"),
            1 => write!(out, "{theme} lookbook: the {item}"),
            2 => write!(out, "How I style my {item} for {occasion}"),
            3 => write!(out, "{theme} outfit ideas for {occasion}"),
            4 => write!(out, "Honest review: the {item}, worth it?"),
            5 => write!(out, "{theme} capsule wardrobe in {n} pieces"),
            6 => write!(out, "Styling {a_item} for {occasion}"),
            7 => write!(out, "Get ready with me: {occasion}, {theme} edition"),
            8 => write!(out, "{theme} haul: {item} and more"),
            _ => write!(out, "Thrifted {item} makeover"),
        };
    }

    fn write_description(
        rng: &mut SmallRng,
        out: &mut Vec<u8>,
        item: (&str, &str),
        occasion: &str,
    ) {
        let (a_item, item) = item;
        if rng.random_bool(0.05) {
            return;
        }
        let opening = OPENINGS.choose(rng).unwrap_or(&OPENINGS[0]);
        let opening = opening
            .replace("{a_item}", a_item)
            .replace("{item}", item)
            .replace("{occasion}", occasion);
        out.extend_from_slice(opening.as_bytes());
        out.push(b' ');
        out.extend_from_slice(CLOSINGS.choose(rng).unwrap_or(&CLOSINGS[0]).as_bytes());
    }
}

/// A UUID v7 whose 12 `rand_a` bits hold the sub-millisecond fraction (RFC
/// 9562, method 3), so ids sort like their microsecond creation times.
fn time_ordered_id(at: DateTime<Utc>, random: u64) -> Uuid {
    let millis = at.timestamp_millis().max(0) as u128;
    let sub_milli = u128::from(at.timestamp_subsec_micros() % 1000) * 4096 / 1000;
    let bits = (millis << 80) | (sub_milli << 64) | u128::from(random);
    uuid::Builder::from_u128(bits)
        .with_version(uuid::Version::SortRand)
        .with_variant(uuid::Variant::RFC4122)
        .into_uuid()
}

fn seconds(seconds: f64) -> TimeDelta {
    TimeDelta::microseconds((seconds * 1e6) as i64)
}

/// Weights 1/rank: the k-th most popular tag is k times rarer than the first.
fn zipf_weights(n: usize) -> WeightedIndex<f64> {
    let weights: Vec<f64> = (1..=n).map(|rank| 1.0 / rank as f64).collect();
    // Non-empty, positive, finite weights: construction cannot fail.
    WeightedIndex::new(weights).unwrap_or_else(|_| unreachable!("valid weights"))
}

fn weights(values: &[u32]) -> WeightedIndex<u32> {
    WeightedIndex::new(values.iter().copied()).unwrap_or_else(|_| unreachable!("valid weights"))
}
