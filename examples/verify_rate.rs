//! Chains verified per second on one core by the path builder/validator (no revocation):
//! leaf -> issuing CA -> root, P-256, built from a pool that also holds a cross-certificate.
//!
//! `cargo run --release --example verify_rate -- 20000`
use std::time::Instant;

use ecca::core::path::{Cert, ExpectedName, Options, Purpose, build_and_validate};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};

fn ca(cn: &str) -> (CertificateParams, KeyPair) {
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.use_authority_key_identifier_extension = true;
    (p, key)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(20_000);
    let (root_p, root_k) = ca("Root");
    let root = root_p.self_signed(&root_k)?;
    let root_issuer = Issuer::from_params(&root_p, &root_k);
    let (int_p, int_k) = ca("Issuing");
    let int = int_p.signed_by(&int_k, &root_issuer)?;
    let (other_p, other_k) = ca("Other Root");
    let cross = root_p.signed_by(&root_k, &Issuer::from_params(&other_p, &other_k))?;
    let leaf_k = KeyPair::generate()?;
    let mut leaf_p = CertificateParams::new(vec!["shop.example.cn".to_string()])?;
    leaf_p.subject_alt_names = vec![SanType::DnsName("shop.example.cn".try_into()?)];
    leaf_p.use_authority_key_identifier_extension = true;
    let leaf = leaf_p.signed_by(&leaf_k, &Issuer::from_params(&int_p, &int_k))?;

    let pool = vec![Cert::parse(cross.der())?, Cert::parse(int.der())?];
    let anchors = vec![Cert::parse(root.der())?];
    let mut opts = Options::at(time::OffsetDateTime::now_utc().unix_timestamp());
    opts.purpose = Purpose::Any;
    opts.name = Some(ExpectedName::Dns("shop.example.cn".into()));
    let leaf_der = leaf.der().to_vec();
    let t = Instant::now();
    for _ in 0..n {
        // Parse the leaf each time, as a verification request would.
        let leaf = Cert::parse(&leaf_der)?;
        let paths =
            build_and_validate(&leaf, &pool, &anchors, &opts).map_err(|f| f.reasons.join("; "))?;
        assert_eq!(paths[0].certs.len(), 3);
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "chains={n} seconds={secs:.2} chains_per_second_one_core={:.0}",
        n as f64 / secs
    );
    Ok(())
}
