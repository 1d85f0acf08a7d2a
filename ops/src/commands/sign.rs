//! `ecca sign`: a detached CMS signature (CAdES-BES) over a document, made with a key that
//! never leaves this machine; with --timestamp-url, an RFC 3161 timestamp on it (CAdES-T).
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args as ClapArgs;
use ecca::core::cms::{self, CmsFormat, CmsSigner, DigestAlg, SignParams};
use ecca::core::tsp;
use ecca::signer::DocumentKey;
use ecca::{Error, Result};
use serde_json::json;

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  ecca sign --key alice.key --cert alice.pem --chain chain.pem --in order-42.pdf --out order-42.pdf.p7s\n  ecca sign --key alice.key --cert alice.pem --in contract.pdf --out contract.p7s --timestamp-url http://127.0.0.1:7080/tsa\n\nThe key is PKCS#8 PEM (ecca keygen, openssl genpkey). An SM2 key makes a GM/T 0010 signature\n(SM3, SM2 with the ID 1234567812345678; --format rfc5652 for RFC 5652 object identifiers). Check with:\n  openssl cms -verify -binary -inform DER -in order-42.pdf.p7s -content order-42.pdf -CAfile roots.pem -purpose any"
)]
pub struct Args {
    /// The signer's private key (PKCS#8 PEM).
    #[arg(long)]
    key: PathBuf,
    /// The signer's certificate (PEM; further certificates in the file are treated as chain).
    #[arg(long)]
    cert: PathBuf,
    /// Intermediate certificates to include (PEM).
    #[arg(long)]
    chain: Option<PathBuf>,
    /// The document.
    #[arg(long = "in")]
    input: PathBuf,
    /// Where to write the signature (DER).
    #[arg(long)]
    out: PathBuf,
    /// An RFC 3161 time-stamping authority, e.g. http://127.0.0.1:7080/tsa.
    #[arg(long)]
    timestamp_url: Option<String>,
    /// Object identifiers to write: rfc5652, or gmt0010 (GB/T 35275 signedData and data).
    /// Default: gmt0010 for SM2 keys, rfc5652 otherwise.
    #[arg(long, value_parser = ["rfc5652", "gmt0010"])]
    format: Option<String>,
}

/// Digest of a file, read in 64 KiB pieces (documents may be large).
pub fn digest_file(path: &Path, alg: DigestAlg) -> Result<(Vec<u8>, u64)> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut ctx = alg.hasher();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        ctx.update(&buf[..n]);
    }
    Ok((ctx.finish(), total))
}

pub async fn run(g: &Global, a: Args) -> Result<()> {
    let key = DocumentKey::load(&a.key)?;
    let format = match a.format.as_deref() {
        Some(f) => {
            CmsFormat::parse(f).ok_or_else(|| Error::field("--format", "rfc5652 or gmt0010"))?
        }
        None if key.is_sm2() => CmsFormat::GmT0010,
        None => CmsFormat::Rfc5652,
    };
    let mut certs = ecca::pemfile::parse_certs(&output::read(&a.cert)?)?;
    if certs.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{}: no certificate",
            a.cert.display()
        )));
    }
    let cert = certs.remove(0);
    let mut chain = certs;
    if let Some(p) = &a.chain {
        chain.extend(ecca::pemfile::parse_certs(&output::read(p)?)?);
    }
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert)
        .map_err(|e| Error::InvalidArgument(format!("certificate: {e}")))?;
    if parsed.public_key().raw != key.spki_der().as_slice() {
        return Err(Error::InvalidArgument(
            "the key does not belong to the certificate".into(),
        ));
    }
    let (digest_alg, _) = key.algorithms();
    let (digest, size) = digest_file(&a.input, digest_alg)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut sig = cms::sign(
        &SignParams {
            content_type: cms::oid::DATA,
            format,
            econtent: None,
            content_digest: &digest,
            signer_cert: &cert,
            chain: &chain,
            include_certs: true,
            signing_time: Some(now),
        },
        &key,
    )?;
    let mut stamped = None;
    if let Some(url) = &a.timestamp_url {
        let signature = cms::first_signature(&cms::signed_data(&sig)?)?;
        let mut nonce = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce)
            .map_err(|_| Error::Internal("random nonce".into()))?;
        // An SM2 signature is timestamped over its SM3 digest (the TSA answers with SM2).
        let imprint = if key.is_sm2() {
            DigestAlg::Sm3
        } else {
            DigestAlg::Sha256
        };
        let request = tsp::request(
            imprint,
            &imprint.digest(&signature),
            u64::from_be_bytes(nonce) >> 1,
        )?;
        let reply = ecca::verify::http_post(
            url,
            "application/timestamp-query",
            request,
            64 * 1024,
            Duration::from_secs(10),
        )
        .await
        .map_err(Error::Remote)?;
        let token = tsp::token_of(&reply)?;
        let checked = cms::check_token(&token, &signature, &[])?;
        stamped = Some(checked.gen_time);
        sig = cms::add_timestamp(&sig, &token)?;
    }
    output::write(&a.out, &sig)?;
    let signer = parsed.subject().to_string();
    if g.json {
        return output::print_json(
            &json!({"out": a.out, "signer": signer, "bytes_signed": size, "timestamp": stamped}),
        );
    }
    println!("signed {} ({size} bytes) as {signer}", a.input.display());
    if let Some(t) = stamped {
        println!("timestamp: {}", output::time_text(t));
    }
    println!("wrote {}", a.out.display());
    Ok(())
}
