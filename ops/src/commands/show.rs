//! `ecca show`: one certificate by serial.
use clap::Args as ClapArgs;
use ecca::Result;
use ecca::pemfile::certs_to_pem;

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
#[command(after_help = "Example:\n  ecca --data-dir ./ecca-data show --serial 5f1c0a... --pem")]
pub struct Args {
    /// Serial number, hexadecimal (colons allowed).
    #[arg(long)]
    serial: String,
    /// Also print the certificate as PEM.
    #[arg(long)]
    pem: bool,
}

pub async fn run(g: &Global, a: Args) -> Result<()> {
    let cert = g.client().await?.get(&a.serial).await?;
    if g.json {
        let mut v = output::cert_json(&cert);
        v["pem"] = certs_to_pem([cert.der.as_slice()]).into();
        return output::print_json(&v);
    }
    print!("{}", output::cert_text(&cert));
    if a.pem {
        print!("{}", certs_to_pem([cert.der.as_slice()]));
    }
    Ok(())
}
