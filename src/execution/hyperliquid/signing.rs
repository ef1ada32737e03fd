//! Hyperliquid L1 action signing, on `alloy` primitives (the same steps as the official Python
//! SDK's `sign_l1_action`): the action is MessagePack-encoded (map keys in wire order), followed
//! by the nonce (8 bytes, big-endian), a vault flag (`0x00`, or `0x01` and the vault address)
//! and, when set, `0x00` and `expiresAfter` (8 bytes); its keccak-256 is the `connectionId` of
//! an EIP-712 `Agent { string source; bytes32 connectionId }` ("a" mainnet, "b" testnet) in the
//! domain `Exchange`, version 1, chain id 1337, verifying contract zero. The signature is
//! secp256k1 over that struct's signing hash, `v` = 27 + parity.
//!
//! The private key comes from the environment only ([`Signer::from_env`]); `Debug` shows the
//! address, never the key.

use alloy_primitives::{keccak256, Address, Signature, B256, U256};
use alloy_sol_types::{eip712_domain, sol, SolStruct};
use k256::ecdsa::SigningKey;
use serde::{Deserialize, Serialize};

sol! {
    /// Hyperliquid's phantom agent: what an L1 action's signature covers.
    struct Agent {
        string source;
        bytes32 connectionId;
    }
}

/// Which Hyperliquid chain an action is for; part of what is signed, so a testnet signature
/// is worthless on mainnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    Mainnet,
    Testnet,
}

impl Network {
    fn source(self) -> &'static str {
        match self {
            Network::Mainnet => "a",
            Network::Testnet => "b",
        }
    }
}

/// A signature as `/exchange` takes it: `r`, `s` as `0x` hex (no leading zeros, as the SDKs
/// print them), `v` 27 or 28.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireSignature {
    pub r: String,
    pub s: String,
    pub v: u8,
}

/// Why an action could not be signed or a signature not checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignError {
    /// The key variable is unset or empty (named).
    MissingKey(String),
    /// The key is not 32 bytes of hex (the key itself is never shown).
    BadKey(String),
    /// MessagePack encoding of the action failed.
    Encode(String),
    /// `r`, `s` or `v` of a received signature is malformed, or no key recovers from it.
    BadSignature(String),
}

impl std::fmt::Display for SignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignError::MissingKey(var) => write!(
                f,
                "{var} is not set: export the API (agent) wallet's private key as {var} \
                 (hex, 0x optional); smartflow reads it from the environment only"
            ),
            SignError::BadKey(var) => write!(f, "{var} is not a 32-byte hex private key"),
            SignError::Encode(e) => write!(f, "cannot encode the action: {e}"),
            SignError::BadSignature(e) => write!(f, "bad signature: {e}"),
        }
    }
}

impl std::error::Error for SignError {}

/// keccak-256 of the action's MessagePack, nonce, vault flag and optional expiry: the
/// phantom agent's `connectionId`.
pub fn action_hash<A: Serialize>(
    action: &A,
    vault: Option<Address>,
    nonce: u64,
    expires_after: Option<u64>,
) -> Result<B256, SignError> {
    let mut data = rmp_serde::to_vec_named(action).map_err(|e| SignError::Encode(e.to_string()))?;
    data.extend_from_slice(&nonce.to_be_bytes());
    match vault {
        None => data.push(0),
        Some(a) => {
            data.push(1);
            data.extend_from_slice(a.as_slice());
        }
    }
    if let Some(t) = expires_after {
        data.push(0);
        data.extend_from_slice(&t.to_be_bytes());
    }
    Ok(keccak256(&data))
}

/// The EIP-712 hash an L1 action's signature is over.
pub fn l1_signing_hash(connection_id: B256, network: Network) -> B256 {
    let domain = eip712_domain! {
        name: "Exchange",
        version: "1",
        chain_id: 1337,
        verifying_contract: Address::ZERO,
    };
    let agent = Agent {
        source: network.source().to_string(),
        connectionId: connection_id,
    };
    agent.eip712_signing_hash(&domain)
}

/// The account key that signs actions: an API (agent) wallet's or the account's own.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
    address: Address,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.address())
    }
}

impl Signer {
    /// The key in environment variable `var` (64 hex digits, `0x` optional). Errors:
    /// [`SignError::MissingKey`] when unset or empty, [`SignError::BadKey`] when malformed.
    pub fn from_env(var: &str) -> Result<Self, SignError> {
        match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Self::from_hex(v.trim(), var),
            _ => Err(SignError::MissingKey(var.to_string())),
        }
    }

    /// A key from hex; `name` says where it came from in an error.
    pub fn from_hex(hex: &str, name: &str) -> Result<Self, SignError> {
        let hex = hex.strip_prefix("0x").unwrap_or(hex);
        let bytes: B256 = hex
            .parse()
            .map_err(|_| SignError::BadKey(name.to_string()))?;
        let key = SigningKey::from_bytes(bytes.as_slice().into())
            .map_err(|_| SignError::BadKey(name.to_string()))?;
        let address = Address::from_public_key(key.verifying_key());
        Ok(Self { key, address })
    }

    /// The address the key signs for.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Signs an L1 action (order, cancel, …) with `nonce` (Unix ms, unique per signer).
    pub fn sign_l1<A: Serialize>(
        &self,
        action: &A,
        vault: Option<Address>,
        nonce: u64,
        expires_after: Option<u64>,
        network: Network,
    ) -> Result<WireSignature, SignError> {
        let hash = l1_signing_hash(action_hash(action, vault, nonce, expires_after)?, network);
        let (sig, recid) = self
            .key
            .sign_prehash_recoverable(hash.as_slice())
            .map_err(|e| SignError::BadSignature(e.to_string()))?;
        let (r, s) = sig.split_bytes();
        Ok(WireSignature {
            r: format!("{:#x}", U256::from_be_slice(&r)),
            s: format!("{:#x}", U256::from_be_slice(&s)),
            v: 27 + recid.is_y_odd() as u8,
        })
    }
}

/// The address that signed `action` (what the venue does with every `/exchange` request).
pub fn recover_l1<A: Serialize>(
    action: &A,
    sig: &WireSignature,
    vault: Option<Address>,
    nonce: u64,
    expires_after: Option<u64>,
    network: Network,
) -> Result<Address, SignError> {
    let hash = l1_signing_hash(action_hash(action, vault, nonce, expires_after)?, network);
    let int = |s: &str| {
        U256::from_str_radix(s.trim_start_matches("0x"), 16)
            .map_err(|e| SignError::BadSignature(format!("{s}: {e}")))
    };
    let parity = match sig.v {
        27 => false,
        28 => true,
        v => return Err(SignError::BadSignature(format!("v = {v}"))),
    };
    Signature::new(int(&sig.r)?, int(&sig.s)?, parity)
        .recover_address_from_prehash(&hash)
        .map_err(|e| SignError::BadSignature(e.to_string()))
}
