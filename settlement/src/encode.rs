//! Direct XDR encoding and signing of payment transactions, into reused buffers.
//!
//! A payment transaction has a fixed shape (its ops are `Payment`,
//! `CreateAccount` or `CreateClaimableBalance` with one unconditional
//! claimant, see [`PayoutOp`]), so its XDR is written here field by field instead of through `stellar-xdr`'s generic writer (which would
//! also serialize the whole transaction a second time, from a clone, to hash
//! it). The envelope starts with `ENVELOPE_TYPE_TX` followed by the
//! transaction, which is exactly the tail of the signature payload
//! `network_id || ENVELOPE_TYPE_TX || tx`: the bytes are written once, hashed
//! in place, and the signature is appended. Tests in `tx.rs` and
//! `tests/golden.rs` hold these bytes equal to `stellar-xdr` and `stellar-sdk`.

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::asset::Asset;
use crate::error::{Error, Result};
use crate::keys::{Keypair, PublicKey};
use crate::network::Network;
use crate::tx::{PaymentBatch, PayoutOp, SignedTx};

/// `EnvelopeType::Tx`, also the tag of the signature payload.
const ENVELOPE_TYPE_TX: u32 = 2;
const KEY_TYPE_ED25519: u32 = 0;
const PRECOND_NONE: u32 = 0;
const PRECOND_TIME: u32 = 1;
const MEMO_NONE: u32 = 0;
const MEMO_HASH: u32 = 3;
const OP_CREATE_ACCOUNT: u32 = 0;
const OP_PAYMENT: u32 = 1;
const OP_CREATE_CLAIMABLE_BALANCE: u32 = 14;
const CLAIMANT_TYPE_V0: u32 = 0;
const CLAIM_PREDICATE_UNCONDITIONAL: u32 = 0;
const ASSET_NATIVE: u32 = 0;
const ASSET_ALPHANUM4: u32 = 1;
const ASSET_ALPHANUM12: u32 = 2;

/// Signs payment batches for one source key on one network, reusing its
/// buffers from one transaction to the next. Cheap to clone per thread.
#[derive(Clone)]
pub struct TxSigner {
    keypair: Keypair,
    source: PublicKey,
    network_id: [u8; 32],
    buf: Vec<u8>,
}

impl std::fmt::Debug for TxSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxSigner")
            .field("source", &self.source)
            .field("network_id", &hex::encode(self.network_id))
            .finish_non_exhaustive()
    }
}

impl PaymentBatch {
    /// Sign with `keypair` (which must be the source account's) for `network`.
    pub fn sign(&self, keypair: &Keypair, network: &Network) -> Result<SignedTx> {
        TxSigner::new(keypair.clone(), network).sign(self)
    }
}

impl TxSigner {
    pub fn new(keypair: Keypair, network: &Network) -> Self {
        TxSigner {
            source: keypair.public_key(),
            keypair,
            network_id: network.network_id(),
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    pub fn public_key(&self) -> PublicKey {
        self.source
    }

    /// Build, sign and encode `batch`.
    pub fn sign(&mut self, batch: &PaymentBatch) -> Result<SignedTx> {
        let mut envelope_xdr = String::new();
        let (hash, signature) = self.sign_into(batch, &mut envelope_xdr)?;
        Ok(SignedTx {
            envelope_xdr,
            hash,
            signature,
        })
    }

    /// Like [`sign`](Self::sign), but writes the base64 envelope into `out`
    /// (cleared first) and returns the hash and the signature.
    pub fn sign_into(
        &mut self,
        batch: &PaymentBatch,
        out: &mut String,
    ) -> Result<([u8; 32], [u8; 64])> {
        if batch.source() != self.source {
            return Err(Error::SignerMismatch {
                signer: self.source.to_string(),
                source_account: batch.source().to_string(),
            });
        }
        let fee = batch.validate()?;
        self.buf.clear();
        put_u32(&mut self.buf, ENVELOPE_TYPE_TX);
        write_transaction(&mut self.buf, batch, fee);

        let mut hasher = Sha256::new();
        hasher.update(self.network_id);
        hasher.update(&self.buf);
        let hash: [u8; 32] = hasher.finalize().into();
        let signature = self.keypair.sign(&hash);

        put_u32(&mut self.buf, 1); // one DecoratedSignature
        self.buf.extend_from_slice(&self.source.hint());
        put_u32(&mut self.buf, 64);
        self.buf.extend_from_slice(&signature);

        out.clear();
        base64::engine::general_purpose::STANDARD.encode_string(&self.buf, out);
        Ok((hash, signature))
    }

    /// The raw XDR bytes of the last envelope signed.
    pub fn last_envelope_bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// Append the XDR of the batch's `Transaction` (already validated, `fee` computed).
fn write_transaction(buf: &mut Vec<u8>, batch: &PaymentBatch, fee: u32) {
    put_account(buf, &batch.source());
    put_u32(buf, fee);
    buf.extend_from_slice(&batch.seq().to_be_bytes());
    match batch.time_bounds() {
        None => put_u32(buf, PRECOND_NONE),
        Some(tb) => {
            put_u32(buf, PRECOND_TIME);
            buf.extend_from_slice(&tb.min_time.to_be_bytes());
            buf.extend_from_slice(&tb.max_time.to_be_bytes());
        }
    }
    match batch.memo_hash() {
        None => put_u32(buf, MEMO_NONE),
        Some(memo) => {
            put_u32(buf, MEMO_HASH);
            buf.extend_from_slice(&memo);
        }
    }
    let payments = batch.payments();
    put_u32(buf, payments.len() as u32);
    for p in payments {
        put_u32(buf, 0); // no per-operation source account
        match p.op {
            PayoutOp::Payment => {
                put_u32(buf, OP_PAYMENT);
                put_account(buf, &p.destination);
                put_asset(buf, &p.asset);
                buf.extend_from_slice(&p.amount.0.to_be_bytes());
            }
            PayoutOp::CreateAccount => {
                // Validated: the asset is native, and not written.
                put_u32(buf, OP_CREATE_ACCOUNT);
                put_account(buf, &p.destination);
                buf.extend_from_slice(&p.amount.0.to_be_bytes());
            }
            PayoutOp::ClaimableBalance => {
                put_u32(buf, OP_CREATE_CLAIMABLE_BALANCE);
                put_asset(buf, &p.asset);
                buf.extend_from_slice(&p.amount.0.to_be_bytes());
                put_u32(buf, 1); // one Claimant
                put_u32(buf, CLAIMANT_TYPE_V0);
                put_account(buf, &p.destination);
                put_u32(buf, CLAIM_PREDICATE_UNCONDITIONAL);
            }
        }
    }
    put_u32(buf, 0); // TransactionExt::V0
}

/// A `MuxedAccount` / `AccountId` of type ed25519 (same bytes for both).
fn put_account(buf: &mut Vec<u8>, key: &PublicKey) {
    put_u32(buf, KEY_TYPE_ED25519);
    buf.extend_from_slice(key.as_bytes());
}

fn put_asset(buf: &mut Vec<u8>, asset: &Asset) {
    match asset {
        Asset::Native => put_u32(buf, ASSET_NATIVE),
        Asset::Credit { code, issuer } => {
            if code.is_alphanum4() {
                put_u32(buf, ASSET_ALPHANUM4);
                buf.extend_from_slice(&code.padded()[..4]);
            } else {
                put_u32(buf, ASSET_ALPHANUM12);
                buf.extend_from_slice(code.padded());
            }
            put_account(buf, issuer);
        }
    }
}

fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_be_bytes());
}
