//! Ordering guarantees under random per-item delays, checked by proptest:
//! `map_ordered` emits in input order, `partition_by` keeps each key's
//! order, `map_concurrent` loses and duplicates nothing. Time is tokio's
//! paused clock, so the delays reorder completions deterministically per
//! case and cost no wall time.

use std::time::Duration;

use conc_pipeline::Pipeline;
use proptest::prelude::*;

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap()
}

fn delays() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(0..20_u64, 0..if cfg!(miri) { 12 } else { 120 })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 2 } else { 48 }, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn map_ordered_emits_in_input_order(delays in delays(), workers in 1..8_usize) {
        let expected: Vec<usize> = (0..delays.len()).collect();
        let out = paused_runtime().block_on(async {
            Pipeline::from_iter(delays.into_iter().enumerate())
                .map_ordered(workers, |(index, delay)| async move {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    index
                })
                .unwrap()
                .collect()
                .await
                .unwrap()
        });
        prop_assert_eq!(out, expected);
    }

    #[test]
    fn partition_by_keeps_each_keys_order(delays in delays(), workers in 1..6_usize, keys in 1..5_usize) {
        let total = delays.len();
        let out = paused_runtime().block_on(async {
            Pipeline::from_iter(delays.into_iter().enumerate())
                .partition_by(move |(index, _)| index % keys, workers, |(index, delay)| async move {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    index
                })
                .unwrap()
                .collect()
                .await
                .unwrap()
        });
        prop_assert_eq!(out.len(), total);
        for key in 0..keys {
            let of_key: Vec<usize> = out.iter().copied().filter(|index| index % keys == key).collect();
            prop_assert!(of_key.is_sorted(), "key {} out of order: {:?}", key, of_key);
        }
    }

    #[test]
    fn map_concurrent_loses_and_duplicates_nothing(delays in delays(), workers in 1..8_usize) {
        let expected: Vec<usize> = (0..delays.len()).collect();
        let mut out = paused_runtime().block_on(async {
            Pipeline::from_iter(delays.into_iter().enumerate())
                .map_concurrent(workers, |(index, delay)| async move {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    index
                })
                .unwrap()
                .collect()
                .await
                .unwrap()
        });
        out.sort_unstable();
        prop_assert_eq!(out, expected);
    }
}
