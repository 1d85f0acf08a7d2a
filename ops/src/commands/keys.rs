//! `ecca keys`: subscriber key operations; `open` unwraps a dual certificate's encryption key.
use std::path::PathBuf;

use clap::{Args as ClapArgs, Subcommand};
use ecca::signer::SoftwareKey;
use ecca::{Error, Result};
use serde_json::json;
use x509_parser::prelude::FromDer;

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Open the envelope of a dual certificate's encryption key (from `ecca issue --dual` or
    /// `ecca kmc fetch`) with the signing key it is addressed to; writes the encryption key.
    #[command(
        after_help = "Example:\n  ecca keys open --envelope enc.env --key sign.key --out enc.key\n\nAn SM2EnvelopedKey (GM/T 0009) needs the SM2 signing key; a CMS EnvelopedData the P-256/P-384 one."
    )]
    Open {
        /// The envelope (DER): SM2EnvelopedKey or CMS EnvelopedData.
        #[arg(long)]
        envelope: PathBuf,
        /// The private key the envelope is addressed to (PKCS#8 PEM or DER; an encrypted one
        /// needs $ECCA_KEY_PASSPHRASE).
        #[arg(long)]
        key: PathBuf,
        /// Where to write the encryption private key (PKCS#8 PEM, mode 0600; must not exist).
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(g: &Global, a: Args) -> Result<()> {
    match a.command {
        Command::Open { envelope, key, out } => open(g, &envelope, &key, &out),
    }
}

/// The signing key as PKCS#8 DER, whatever form it was saved in.
fn signing_key(path: &std::path::Path) -> Result<Vec<u8>> {
    let bytes = output::read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    if text.contains("ENCRYPTED PRIVATE KEY") {
        return Ok(SoftwareKey::load(path)?.pkcs8_der());
    }
    if text.contains("-----BEGIN") {
        let block = pem::parse(&bytes)
            .map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))?;
        if block.tag() != "PRIVATE KEY" {
            return Err(Error::InvalidArgument(format!(
                "{}: a {:?} block; give the PKCS#8 key (`openssl pkcs8 -topk8 -nocrypt -in {} -out key.p8`)",
                path.display(),
                block.tag(),
                path.display()
            )));
        }
        return Ok(block.into_contents());
    }
    Ok(bytes)
}

fn open(
    g: &Global,
    envelope: &std::path::Path,
    key: &std::path::Path,
    out: &std::path::Path,
) -> Result<()> {
    if out.exists() {
        return Err(Error::InvalidArgument(format!(
            "{} exists; refusing to overwrite a key",
            out.display()
        )));
    }
    let sealed = output::read(envelope)?;
    let pkcs8 = ecca::core::envelope::open(&sealed, &signing_key(key)?)
        .map_err(|e| Error::InvalidArgument(format!("{}: {e}", envelope.display())))?;
    let opened = SoftwareKey::from_pkcs8_der(&pkcs8)?;
    opened.save_plain(out)?;
    let spki = opened.spki_der();
    let algorithm = x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki)
        .map_err(|e| Error::Internal(format!("public key: {e}")))
        .and_then(|(_, k)| Ok(ecca::core::keys::KeyAlg::of_spki(&k)?.name()))?;
    if g.json {
        return output::print_json(&json!({
            "key": out,
            "algorithm": algorithm,
            "public_key_sha256": ecca::core::fingerprint(&spki),
        }));
    }
    println!(
        "wrote the {algorithm} encryption key to {} (mode 0600)",
        out.display()
    );
    Ok(())
}
