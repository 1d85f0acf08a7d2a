//! `ecca keygen`: a private key for a CSR, written 0600.
use std::path::PathBuf;

use clap::Args as ClapArgs;
use ecca::core::keys::CaKeyAlg;
use ecca::signer::SoftwareKey;
use ecca::{Error, Result};
use serde_json::json;

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Examples:\n  ecca keygen --out shop.key --alg p256\n  ecca keygen --out shop-sm2.key --alg sm2     (national algorithm; openssl reads it as an SM2 key)"
)]
pub struct Args {
    /// Where to write the key (PKCS#8 PEM, mode 0600; must not exist).
    #[arg(long)]
    out: PathBuf,
    /// Key algorithm (sm2: the national algorithm, GM/T 0003).
    #[arg(long, default_value = "p256", value_parser = ["p256", "p384", "ed25519", "sm2"])]
    alg: String,
}

pub fn run(g: &Global, a: Args) -> Result<()> {
    if a.out.exists() {
        return Err(Error::InvalidArgument(format!(
            "{} exists; refusing to overwrite a key",
            a.out.display()
        )));
    }
    let alg = CaKeyAlg::parse(&a.alg).unwrap_or_default();
    SoftwareKey::generate(alg)?.save_plain(&a.out)?;
    if g.json {
        return output::print_json(&json!({"key": a.out, "algorithm": a.alg}));
    }
    println!("wrote {} key to {} (mode 0600)", a.alg, a.out.display());
    Ok(())
}
