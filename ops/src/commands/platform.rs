//! `ecca platform`: tenants (e-commerce platforms) and their credentials.
use std::path::PathBuf;

use clap::{Args as ClapArgs, Subcommand};
use ecca::proto::{AddPlatformRequest, Platform, SetPlatformSubjectsRequest};
use ecca::{Error, Result};
use serde_json::json;

use crate::context::Global;
use crate::{creds, output};

#[derive(Debug, ClapArgs)]
#[command(
    after_help = "Example:\n  ecca platform add shopmall --dns-suffix shopmall.example.cn --profiles server-tls,client-tls --max-days 90 --rate 600/min --org 'Shopmall Ltd' --name 'api-client-*' --out ./shopmall-creds\n  ecca platform subjects shopmall --org 'Shopmall Ltd' --uscc 91350100M000100Y43 --name 'api-client-*'\n  ecca --server https://ca.example.cn:7443 --credentials ./shopmall-creds issue --csr web.csr --profile server-tls --out web.pem"
)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a platform and write its credential (key made here) to --out.
    Add {
        name: String,
        /// DNS suffix it may issue under (repeatable).
        #[arg(long = "dns-suffix")]
        dns_suffixes: Vec<String>,
        /// IP range it may issue for, CIDR (repeatable).
        #[arg(long = "ip-range")]
        ip_ranges: Vec<String>,
        /// Profiles it may use, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        profiles: Vec<String>,
        /// Longest validity it may get, in days.
        #[arg(long)]
        max_days: Option<u32>,
        /// Rate limit, e.g. 600/min.
        #[arg(long)]
        rate: Option<String>,
        #[command(flatten)]
        subjects: Subjects,
        /// Credential folder to create (cert.pem, key.pem, ca.pem).
        #[arg(long)]
        out: PathBuf,
    },
    /// Replace what a platform may put in subjects besides its DNS names and addresses.
    Subjects {
        name: String,
        #[command(flatten)]
        subjects: Subjects,
    },
    /// List platforms.
    List,
    /// Show one platform.
    Show { name: String },
    /// Issue a new credential into --out and disable the old ones.
    Rotate {
        name: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Disable a platform: its credentials are refused at their next call.
    Disable { name: String },
    /// Re-enable a disabled platform.
    Enable { name: String },
    /// Create an ACME External Account Binding key: an ACME account registered with it acts
    /// as this platform (its names, profiles, validity and rate). One account per key.
    #[command(
        name = "acme-key",
        after_help = "Example:\n  ecca platform acme-key shopmall --json\n  certbot certonly --standalone --server https://127.0.0.1:9466/acme/directory --eab-kid KID --eab-hmac-key HMAC -d www.shopmall.example.cn\n  lego --server https://127.0.0.1:9466/acme/directory --eab --kid KID --hmac HMAC --email ops@shopmall.example.cn --domains www.shopmall.example.cn --http run"
    )]
    AcmeKey { name: String },
}

/// What a platform may put in a certificate's subject (O, serialNumber, free-text CN/OU).
#[derive(Debug, ClapArgs)]
struct Subjects {
    /// Organization (subject O) registered to the platform (repeatable).
    #[arg(long = "org")]
    organizations: Vec<String>,
    /// Unified Social Credit Code (subject serialNumber) registered to it (repeatable).
    #[arg(long = "uscc")]
    usccs: Vec<String>,
    /// Free-text CN/OU it may use, e.g. "api-client-*" (trailing * = any continuation; repeatable).
    #[arg(long = "name")]
    names: Vec<String>,
}

fn parse_rate(s: &str) -> Result<u32> {
    let n = s.strip_suffix("/min").unwrap_or(s);
    n.parse()
        .map_err(|_| Error::field("--rate", format!("{s:?}: use N/min, e.g. 600/min")))
}

fn platform_json(p: &Platform) -> serde_json::Value {
    json!({"name": p.name, "dns_suffixes": p.dns_suffixes, "ip_ranges": p.ip_ranges, "profiles": p.profiles,
           "max_days": p.max_days, "rate_per_minute": p.rate_per_minute, "disabled": p.disabled, "credentials": p.credentials,
           "organizations": p.organizations, "usccs": p.usccs, "names": p.names})
}

fn print(p: &Platform) {
    println!("{}{}", p.name, if p.disabled { "  [disabled]" } else { "" });
    println!(
        "  names:       {}",
        p.dns_suffixes
            .iter()
            .chain(&p.ip_ranges)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  profiles:    {}", p.profiles.join(", "));
    if let Some(d) = p.max_days {
        println!("  max days:    {d}");
    }
    if let Some(r) = p.rate_per_minute {
        println!("  rate:        {r}/min");
    }
    for (label, v) in [
        ("orgs:      ", &p.organizations),
        ("usccs:     ", &p.usccs),
        ("free names:", &p.names),
    ] {
        if !v.is_empty() {
            println!("  {label}  {}", v.join(", "));
        }
    }
    println!("  credentials: {}", p.credentials.join(", "));
}

pub async fn run(g: &Global, a: Args) -> Result<()> {
    let client = g.client().await?;
    match a.command {
        Command::Add {
            name,
            dns_suffixes,
            ip_ranges,
            profiles,
            max_days,
            rate,
            subjects,
            out,
        } => {
            ecca::pemfile::private_dir(&out)?;
            let csr = creds::new_key_and_csr(&out, &format!("platform {name}"))?;
            let rate_per_minute = rate.as_deref().map(parse_rate).transpose()?;
            let cred = client
                .add_platform(AddPlatformRequest {
                    name: name.clone(),
                    dns_suffixes,
                    ip_ranges,
                    profiles,
                    max_days,
                    rate_per_minute,
                    csr,
                    organizations: subjects.organizations,
                    usccs: subjects.usccs,
                    names: subjects.names,
                })
                .await?;
            creds::write(&out, &cred)?;
            if g.json {
                return output::print_json(
                    &json!({"platform": name, "credential": cred.serial, "out": out}),
                );
            }
            println!(
                "created platform {name}; credential {} in {}",
                cred.serial,
                out.display()
            );
        }
        Command::List => {
            let list = client.platforms().await?;
            if g.json {
                return output::print_json(&json!(
                    list.iter().map(platform_json).collect::<Vec<_>>()
                ));
            }
            list.iter().for_each(print);
            println!("({} platform(s))", list.len());
        }
        Command::Show { name } => {
            let p = client
                .platforms()
                .await?
                .into_iter()
                .find(|p| p.name == name)
                .ok_or_else(|| Error::NotFound(format!("platform {name:?}")))?;
            if g.json {
                return output::print_json(&platform_json(&p));
            }
            print(&p);
        }
        Command::Rotate { name, out } => {
            ecca::pemfile::private_dir(&out)?;
            let csr = creds::new_key_and_csr(&out, &format!("platform {name}"))?;
            let cred = client.rotate_platform(&name, csr).await?;
            creds::write(&out, &cred)?;
            println!(
                "new credential {} for {name} in {}; the previous ones are disabled",
                cred.serial,
                out.display()
            );
        }
        Command::Subjects { name, subjects } => {
            let p = client
                .set_platform_subjects(SetPlatformSubjectsRequest {
                    name,
                    organizations: subjects.organizations,
                    usccs: subjects.usccs,
                    names: subjects.names,
                })
                .await?;
            if g.json {
                return output::print_json(&platform_json(&p));
            }
            print(&p);
        }
        Command::Disable { name } => print(&client.set_platform_disabled(&name, true).await?),
        Command::Enable { name } => print(&client.set_platform_disabled(&name, false).await?),
        Command::AcmeKey { name } => {
            let key = client.create_acme_key(&name).await?;
            if g.json {
                return output::print_json(
                    &json!({"platform": key.platform, "kid": key.kid, "hmac": key.hmac}),
                );
            }
            println!("ACME EAB key for platform {}:", key.platform);
            println!("  kid:  {}", key.kid);
            println!("  hmac: {}", key.hmac);
            println!(
                "use once: certbot --eab-kid {} --eab-hmac-key {} (lego: --eab --kid ... --hmac ...)",
                key.kid, key.hmac
            );
        }
    }
    Ok(())
}
