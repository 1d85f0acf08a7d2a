//! gRPC message decoding (what tonic hands the handlers) and the handlers' own parsing.
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = ecca::proto::IssueCertificateRequest::decode(data) {
        let _ = ecca::core::csr::verify(&m.csr);
    }
    if let Ok(m) = ecca::proto::VerifyCertificateRequest::decode(data) {
        let _ = ecca::grpc::parse_expected_name(&m.expected_name);
        let _ = ecca::pemfile::parse_certs(&m.leaf);
    }
    let _ = ecca::proto::CrossCertifyRequest::decode(data);
    let _ = ecca::proto::RevokeCertificateRequest::decode(data);
    let _ = ecca::proto::VerifySignatureRequest::decode(data);
    if let Ok(m) = ecca::proto::AddPlatformRequest::decode(data) {
        let _ = ecca::core::csr::verify(&m.csr);
    }
});
