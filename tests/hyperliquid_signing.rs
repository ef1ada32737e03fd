//! The signer reproduces, byte for byte, the official Python SDK's own signing test vectors
//! (hyperliquid-python-sdk `tests/signing_test.py`, commit 7ee976d: fixed key, action, nonce →
//! expected r, s, v on mainnet and testnet), and a venue-side check recovers the signer.

use rust_decimal_macros::dec;
use smartflow::execution::hyperliquid::signing::{
    action_hash, recover_l1, Network, SignError, Signer, WireSignature,
};
use smartflow::execution::hyperliquid::wire::{
    decimal_to_wire, Action, LimitWire, OrderTypeWire, OrderWire, TriggerWire,
};

const KEY: &str = "0x0123456789012345678901234567890123456789012345678901234567890123";

/// `{"type": "dummy", "num": float_to_int_for_hashing(1000)}`.
#[derive(serde::Serialize)]
struct Dummy {
    #[serde(rename = "type")]
    kind: &'static str,
    num: u64,
}

const DUMMY: Dummy = Dummy {
    kind: "dummy",
    num: 100_000_000_000,
};

fn sig(r: &str, s: &str, v: u8) -> WireSignature {
    WireSignature {
        r: r.into(),
        s: s.into(),
        v,
    }
}

fn order(p: &str, s: &str, t: OrderTypeWire, cloid: Option<&str>, asset: u32) -> Action {
    Action::Order {
        orders: vec![OrderWire {
            a: asset,
            b: true,
            p: p.into(),
            s: s.into(),
            r: false,
            t,
            c: cloid.map(Into::into),
        }],
        grouping: "na".into(),
    }
}

fn limit(tif: &str) -> OrderTypeWire {
    OrderTypeWire {
        limit: Some(LimitWire { tif: tif.into() }),
        trigger: None,
    }
}

fn check<A: serde::Serialize>(
    action: &A,
    vault: Option<&str>,
    main: WireSignature,
    test: WireSignature,
) {
    let k = Signer::from_hex(KEY, "test key").unwrap();
    let vault = vault.map(|v| v.parse().unwrap());
    for (net, want) in [(Network::Mainnet, main), (Network::Testnet, test)] {
        let got = k.sign_l1(action, vault, 0, None, net).unwrap();
        assert_eq!(got, want, "{net:?}");
        assert_eq!(
            recover_l1(action, &got, vault, 0, None, net).unwrap(),
            k.address()
        );
    }
}

#[test]
fn l1_action_signing_matches() {
    check(
        &DUMMY,
        None,
        sig(
            "0x53749d5b30552aeb2fca34b530185976545bb22d0b3ce6f62e31be961a59298",
            "0x755c40ba9bf05223521753995abb2f73ab3229be8ec921f350cb447e384d8ed8",
            27,
        ),
        sig(
            "0x542af61ef1f429707e3c76c5293c80d01f74ef853e34b76efffcb57e574f9510",
            "0x17b8b32f086e8cdede991f1e2c529f5dd5297cbe8128500e00cbaf766204a613",
            28,
        ),
    );
}

#[test]
fn l1_action_signing_matches_with_vault() {
    check(
        &DUMMY,
        Some("0x1719884eb866cb12b2287399b15f7db5e7d775ea"),
        sig(
            "0x3c548db75e479f8012acf3000ca3a6b05606bc2ec0c29c50c515066a326239",
            "0x4d402be7396ce74fbba3795769cda45aec00dc3125a984f2a9f23177b190da2c",
            28,
        ),
        sig(
            "0xe281d2fb5c6e25ca01601f878e4d69c965bb598b88fac58e475dd1f5e56c362b",
            "0x7ddad27e9a238d045c035bc606349d075d5c5cd00a6cd1da23ab5c39d4ef0f60",
            27,
        ),
    );
}

#[test]
fn l1_action_signing_order_matches() {
    check(
        &order("100", "100", limit("Gtc"), None, 1),
        None,
        sig(
            "0xd65369825a9df5d80099e513cce430311d7d26ddf477f5b3a33d2806b100d78e",
            "0x2b54116ff64054968aa237c20ca9ff68000f977c93289157748a3162b6ea940e",
            28,
        ),
        sig(
            "0x82b2ba28e76b3d761093aaded1b1cdad4960b3af30212b343fb2e6cdfa4e3d54",
            "0x6b53878fc99d26047f4d7e8c90eb98955a109f44209163f52d8dc4278cbbd9f5",
            27,
        ),
    );
}

#[test]
fn l1_action_signing_order_with_cloid_matches() {
    check(
        &order(
            "100",
            "100",
            limit("Gtc"),
            Some("0x00000000000000000000000000000001"),
            1,
        ),
        None,
        sig(
            "0x41ae18e8239a56cacbc5dad94d45d0b747e5da11ad564077fcac71277a946e3",
            "0x3c61f667e747404fe7eea8f90ab0e76cc12ce60270438b2058324681a00116da",
            27,
        ),
        sig(
            "0xeba0664bed2676fc4e5a743bf89e5c7501aa6d870bdb9446e122c9466c5cd16d",
            "0x7f3e74825c9114bc59086f1eebea2928c190fdfbfde144827cb02b85bbe90988",
            28,
        ),
    );
}

#[test]
fn l1_action_signing_tpsl_order_matches() {
    let sl = OrderTypeWire {
        limit: None,
        trigger: Some(TriggerWire {
            is_market: true,
            trigger_px: "103".into(),
            tpsl: "sl".into(),
        }),
    };
    check(
        &order("100", "100", sl, None, 1),
        None,
        sig(
            "0x98343f2b5ae8e26bb2587daad3863bc70d8792b09af1841b6fdd530a2065a3f9",
            "0x6b5bb6bb0633b710aa22b721dd9dee6d083646a5f8e581a20b545be6c1feb405",
            27,
        ),
        sig(
            "0x971c554d917c44e0e1b6cc45d8f9404f32172a9d3b3566262347d0302896a2e4",
            "0x206257b104788f80450f8e786c329daa589aa0b32ba96948201ae556d5637eac",
            28,
        ),
    );
}

/// `test_phantom_agent_creation_matches_production`: an ETH IOC order of 0.0147 at 1670.1 (asset
/// 4, nonce 1677777606040) hashes to the connection id the production venue saw.
#[test]
fn phantom_agent_creation_matches_production() {
    let p = decimal_to_wire(dec!(1670.10)).unwrap();
    let s = decimal_to_wire(dec!(0.01470)).unwrap();
    assert_eq!((p.as_str(), s.as_str()), ("1670.1", "0.0147"));
    let a = order(&p, &s, limit("Ioc"), None, 4);
    let h = action_hash(&a, None, 1_677_777_606_040, None).unwrap();
    assert_eq!(
        format!("{h:#x}"),
        "0x0fcbeda5ae3c4950a548021552a4fea2226858c4453571bf3f24ba017eac2908"
    );
}

/// A signature over one action does not recover the signer for another (the venue's
/// "Unable to recover signer" / wrong-user case), and a missing or bad key is a clear error
/// that never shows the key.
#[test]
fn tampering_and_bad_keys_are_caught() {
    let k = Signer::from_hex(KEY, "test key").unwrap();
    let a = order("100", "100", limit("Gtc"), None, 1);
    let s = k.sign_l1(&a, None, 7, None, Network::Testnet).unwrap();
    let b = order("100", "101", limit("Gtc"), None, 1);
    assert_ne!(
        recover_l1(&b, &s, None, 7, None, Network::Testnet).unwrap(),
        k.address()
    );
    assert_ne!(
        recover_l1(&a, &s, None, 8, None, Network::Testnet).unwrap(),
        k.address()
    );
    assert_ne!(
        recover_l1(&a, &s, None, 7, None, Network::Mainnet).unwrap(),
        k.address()
    );
    let var = "SMARTFLOW_TEST_UNSET_KEY_VARIABLE";
    let e = Signer::from_env(var).unwrap_err();
    assert_eq!(e, SignError::MissingKey(var.into()));
    assert!(e.to_string().contains(var));
    let e = Signer::from_hex("0x1234zz", "HL_KEY").unwrap_err();
    assert_eq!(e.to_string(), "HL_KEY is not a 32-byte hex private key");
    assert!(!format!("{k:?}").contains("0123456789012345678901234567890123456789"));
}
