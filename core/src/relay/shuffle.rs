//! A seeded shuffle. The core draws no random numbers: the shell passes a seed, so one seed
//! always gives the same order (in tests, in the simulator, when replaying a failure).

/// SplitMix64: tiny, fast, and good enough to spread load over equal MX preferences.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0). The modulo bias is irrelevant for a handful of MX hosts.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Shuffles each run of consecutive items with the same key (Fisher–Yates per run), leaving
/// the runs in place: a list sorted by preference stays sorted.
pub(crate) fn shuffle_runs<T, K: PartialEq>(items: &mut [T], key: impl Fn(&T) -> K, seed: u64) {
    let mut rng = SplitMix64(seed);
    let mut start = 0;
    while start < items.len() {
        let k = key(&items[start]);
        let end = start + items[start..].iter().take_while(|i| key(i) == k).count();
        let run = &mut items[start..end];
        for i in (1..run.len()).rev() {
            let j = rng.below(i + 1);
            run.swap(i, j);
        }
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_stay_in_place_and_seeds_decide_the_order() {
        let items: Vec<(u8, u8)> = (0..8).map(|i| (i / 4, i)).collect();
        let mut orders = std::collections::BTreeSet::new();
        for seed in 0..32 {
            let mut v = items.clone();
            shuffle_runs(&mut v, |x| x.0, seed);
            assert!(v[..4].iter().all(|x| x.0 == 0) && v[4..].iter().all(|x| x.0 == 1));
            let mut again = items.clone();
            shuffle_runs(&mut again, |x| x.0, seed);
            assert_eq!(v, again);
            orders.insert(v);
        }
        assert!(orders.len() > 8, "seeds should give different orders");
    }
}
