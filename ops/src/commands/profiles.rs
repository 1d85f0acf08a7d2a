//! `ecca profiles`: what the CA issues.
use clap::Args as ClapArgs;
use ecca::Result;
use serde_json::json;

use crate::context::Global;
use crate::output;

#[derive(Debug, ClapArgs)]
pub struct Args {}

pub async fn run(g: &Global, _a: Args) -> Result<()> {
    let profiles = g.client().await?.profiles().await?;
    if g.json {
        let v: Vec<_> = profiles
            .iter()
            .map(|p| {
                json!({
                    "name": p.name, "description": p.description, "key_algorithms": p.key_algorithms,
                    "max_validity_days": p.max_validity_days, "default_validity_days": p.default_validity_days,
                    "key_usages": p.key_usages, "extended_key_usages": p.extended_key_usages,
                    "issuer": p.issuer, "issuers": p.issuers, "dual": p.dual,
                })
            })
            .collect();
        return output::print_json(&json!(v));
    }
    for p in profiles {
        println!("{}", p.name);
        println!("  {}", p.description);
        println!("  issuer: {}", p.issuers.join(", "));
        println!("  keys: {}", p.key_algorithms.join(", "));
        println!(
            "  validity: {} days by default, at most {}",
            p.default_validity_days, p.max_validity_days
        );
        println!(
            "  key usage: {}; extended: {}",
            p.key_usages.join(", "),
            p.extended_key_usages.join(", ")
        );
        if p.dual {
            println!("  dual certificates: yes (ecca issue --dual)");
        }
    }
    Ok(())
}
