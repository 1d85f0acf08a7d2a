//! The ACME resources' handlers: each authenticates the JWS, loads what it may touch (only
//! the account's own objects), changes it with a compare-and-set write, and answers.
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Acme;
use super::jws::{self, Jwk};
use super::objects::{
    Account, Authz, Challenge, Identifier, ORDER_LIFETIME, Order, Stored, StoredProblem, new_id,
    now, rfc3339,
};
use super::problem::{Problem, Subproblem};
use crate::service::{IssueRequest, Service};
use crate::store::{AcmeKind, AcmeObject, Op};
use crate::validation::{Attempt, Failure, Method};

type Answer = Result<Response, Problem>;

/// Identifiers per order, at most.
const MAX_IDENTIFIERS: usize = 100;
/// How long Retry-After tells clients to wait before polling a pending resource.
const POLL_SECONDS: u64 = 1;

/// An authenticated request.
struct Authed {
    payload: Vec<u8>,
    url: String,
    /// The key that signed (from `jwk`, or the account's).
    jwk: Jwk,
    /// The account (requests signed with `kid`).
    account: Option<Stored<Account>>,
    /// The raw `jwk` member, for new accounts.
    jwk_value: Option<Value>,
}

impl Authed {
    fn account(&self) -> Result<&Stored<Account>, Problem> {
        self.account
            .as_ref()
            .ok_or_else(|| Problem::malformed("this request must be signed with kid".into()))
    }

    fn json<T: for<'de> Deserialize<'de>>(&self) -> Result<T, Problem> {
        serde_json::from_slice(&self.payload)
            .map_err(|e| Problem::malformed(format!("payload: {e}")))
    }

    fn is_get(&self) -> bool {
        self.payload.is_empty()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyFrom {
    Jwk,
    Kid,
    Either,
}

impl Acme {
    fn url(&self, headers: &HeaderMap, path: &str) -> String {
        format!("{}{path}", self.base(headers))
    }

    /// RFC 8555 §6.2-6.5: content type, JWS, URL, nonce, key, signature, account state.
    async fn authenticate(
        &self,
        headers: &HeaderMap,
        path: &str,
        body: &[u8],
        from: KeyFrom,
    ) -> Result<Authed, Problem> {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if ct.split(';').next().map(str::trim) != Some("application/jose+json") {
            let mut p = Problem::malformed("Content-Type must be application/jose+json".into());
            p.status = StatusCode::UNSUPPORTED_MEDIA_TYPE.as_u16();
            return Err(p);
        }
        let parsed = jws::parse(body)?;
        let url = self.url(headers, path);
        if parsed.header.url.as_deref() != Some(url.as_str()) {
            return Err(Problem::unauthorized(format!(
                "the JWS url {:?} is not this request's URL {url}",
                parsed.header.url.as_deref().unwrap_or("")
            )));
        }
        let nonce = parsed.header.nonce.as_deref().unwrap_or("");
        if nonce.is_empty() || !self.nonces.redeem(nonce) {
            return Err(Problem::bad_nonce(
                "the nonce is unknown, used or expired; retry with the Replay-Nonce of this answer"
                    .into(),
            ));
        }
        let (jwk, account, jwk_value) = match (&parsed.header.jwk, &parsed.header.kid, from) {
            (Some(v), None, KeyFrom::Jwk | KeyFrom::Either) => {
                (Jwk::parse(v)?, None, Some(v.clone()))
            }
            (None, Some(kid), KeyFrom::Kid | KeyFrom::Either) => {
                let prefix = self.url(headers, "/acme/account/");
                let id = kid.strip_prefix(&prefix).ok_or_else(|| {
                    Problem::account_does_not_exist(format!(
                        "{kid} is not an account URL of this server"
                    ))
                })?;
                let account = self.load_account(id).await?;
                let jwk = Jwk::parse(&serde_json::from_str(&account.doc.jwk).map_err(|_| {
                    Problem::server_internal("stored account key is corrupt".into())
                })?)?;
                (jwk, Some(account), None)
            }
            (Some(_), None, _) => {
                return Err(Problem::malformed(
                    "this request must be signed with kid".into(),
                ));
            }
            _ => {
                return Err(Problem::malformed(
                    "this request must be signed with jwk".into(),
                ));
            }
        };
        jwk.verify(&parsed.header.alg, &parsed.signing_input, &parsed.signature)?;
        if let Some(a) = &account {
            if a.row.status != "valid" {
                return Err(Problem::unauthorized(format!(
                    "account is {}",
                    a.row.status
                )));
            }
            if !self.service.acme_platform_enabled(&a.doc.platform).await? {
                return Err(Problem::unauthorized(format!(
                    "the account's platform {} is disabled",
                    a.doc.platform
                )));
            }
        }
        Ok(Authed {
            payload: parsed.payload,
            url,
            jwk,
            account,
            jwk_value,
        })
    }

    async fn load_account(&self, id: &str) -> Result<Stored<Account>, Problem> {
        match self.service.store().acme_get(AcmeKind::Account, id).await? {
            Some(row) => Stored::decode(row),
            None => Err(Problem::account_does_not_exist(format!("no account {id}"))),
        }
    }

    /// An object of the account's (others' look absent).
    async fn load_owned<T: serde::Serialize + for<'de> Deserialize<'de>>(
        &self,
        kind: AcmeKind,
        id: &str,
        account: &Stored<Account>,
    ) -> Result<Stored<T>, Problem> {
        match self.service.store().acme_get(kind, id).await? {
            Some(row) if row.owner == account.row.id => Stored::decode(row),
            _ => Err(Problem::not_found(format!("no {} {id}", kind.as_str()))),
        }
    }

    async fn put<T: serde::Serialize + for<'de> Deserialize<'de>>(
        &self,
        s: &Stored<T>,
        event: &'static str,
        actor: &str,
        insert: bool,
    ) -> Result<(), Problem> {
        self.service
            .store()
            .write(put_op(s, event, actor, insert))
            .await?;
        Ok(())
    }

    fn actor(account: &Stored<Account>) -> String {
        format!("acme:{}", account.row.id)
    }
}

fn put_op<T: serde::Serialize + for<'de> Deserialize<'de>>(
    s: &Stored<T>,
    event: &'static str,
    actor: &str,
    insert: bool,
) -> Op {
    Op::AcmePut {
        object: s.encoded(),
        replaces: (!insert).then_some(s.row.version),
        event,
        actor: actor.into(),
    }
}

fn json_response(status: StatusCode, body: Value, location: Option<&str>) -> Response {
    let mut resp = json_body(status, &body);
    if let Some(l) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        resp.headers_mut().insert(header::LOCATION, l);
    }
    resp
}

fn json_body(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = (status, bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn link(resp: &mut Response, url: &str, rel: &str) {
    if let Ok(v) = HeaderValue::from_str(&format!("<{url}>;rel=\"{rel}\"")) {
        resp.headers_mut().append(header::LINK, v);
    }
}

fn answer(r: Answer) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

// --- directory and nonces ---------------------------------------------------------------

pub async fn directory(State(a): State<Arc<Acme>>, headers: HeaderMap) -> Response {
    let u = |p: &str| a.url(&headers, p);
    let profiles: serde_json::Map<String, Value> = a
        .settings
        .profiles
        .iter()
        .map(|(n, d)| (n.clone(), Value::String(d.clone())))
        .collect();
    json_body(
        StatusCode::OK,
        &json!({
            "newNonce": u("/acme/new-nonce"),
            "newAccount": u("/acme/new-account"),
            "newOrder": u("/acme/new-order"),
            "revokeCert": u("/acme/revoke-cert"),
            "keyChange": u("/acme/key-change"),
            "renewalInfo": u("/acme/renewal-info"),
            "meta": {
                "externalAccountRequired": a.settings.external_account_required,
                "caaIdentities": a.settings.caa_identities,
                "profiles": profiles,
            }
        }),
    )
}

pub async fn new_nonce_head() -> StatusCode {
    StatusCode::OK
}

pub async fn new_nonce_get() -> StatusCode {
    StatusCode::NO_CONTENT
}

// --- accounts -----------------------------------------------------------------------------

fn account_json(a: &Stored<Account>, eab: Option<&Value>) -> Value {
    let mut v = json!({
        "status": a.row.status,
        "contact": a.doc.contact,
    });
    if let Some(eab) = eab {
        v["externalAccountBinding"] = eab.clone();
    }
    v
}

fn check_contacts(contact: &[String]) -> Result<(), Problem> {
    if contact.len() > 10 {
        return Err(Problem::malformed("at most 10 contacts".into()));
    }
    for c in contact {
        let addr = c.strip_prefix("mailto:").ok_or_else(|| {
            Problem::new_unsupported_contact(format!("{c:?}: only mailto: contacts are accepted"))
        })?;
        crate::core::names::email(addr)
            .map_err(|e| Problem::new_invalid_contact(format!("{c:?}: {e}")))?;
    }
    Ok(())
}

impl Problem {
    fn new_unsupported_contact(detail: String) -> Problem {
        let mut p = Problem::malformed(detail);
        p.kind = "urn:ietf:params:acme:error:unsupportedContact".into();
        p
    }
    fn new_invalid_contact(detail: String) -> Problem {
        let mut p = Problem::malformed(detail);
        p.kind = "urn:ietf:params:acme:error:invalidContact".into();
        p
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewAccount {
    #[serde(default)]
    contact: Vec<String>,
    #[serde(default)]
    only_return_existing: bool,
    #[serde(default)]
    external_account_binding: Option<Value>,
}

pub async fn new_account(State(a): State<Arc<Acme>>, headers: HeaderMap, body: Bytes) -> Response {
    answer(new_account_inner(&a, &headers, &body).await)
}

async fn new_account_inner(a: &Acme, headers: &HeaderMap, body: &[u8]) -> Answer {
    let req = a
        .authenticate(headers, "/acme/new-account", body, KeyFrom::Jwk)
        .await?;
    let p: NewAccount = req.json()?;
    let thumbprint = req.jwk.thumbprint();
    let store = a.service.store();
    if let Some(row) = store.acme_find(AcmeKind::Account, &thumbprint).await? {
        let existing: Stored<Account> = Stored::decode(row)?;
        let url = a.url(headers, &format!("/acme/account/{}", existing.row.id));
        return Ok(json_response(
            StatusCode::OK,
            account_json(&existing, None),
            Some(&url),
        ));
    }
    if p.only_return_existing {
        return Err(Problem::account_does_not_exist(
            "no account has this key".into(),
        ));
    }
    check_contacts(&p.contact)?;
    let id = new_id();
    let mut ops = Vec::new();
    let (platform, eab_kid) = match &p.external_account_binding {
        Some(eab) => {
            let kid = jws::eab_kid(eab)?;
            let Some((row, hmac)) = a.service.acme_eab(&kid).await? else {
                return Err(Problem::unauthorized(format!(
                    "external account key {kid} is unknown or already bound to an account"
                )));
            };
            jws::check_eab(eab, &req.jwk, &req.url, &hmac)?;
            let bound = AcmeObject {
                status: crate::service::acme::EAB_BOUND.into(),
                doc: json!({ "account": id }).to_string(),
                ..row.clone()
            };
            ops.push(Op::AcmePut {
                object: bound,
                replaces: Some(row.version),
                event: "acme.eab_key.bound",
                actor: format!("acme:{id}"),
            });
            (row.owner, Some(kid))
        }
        None if a.settings.external_account_required => {
            return Err(Problem::external_account_required(
                "this server binds every account to a platform: pass the key from `ecca platform acme-key NAME` (certbot --eab-kid/--eab-hmac-key, lego --eab --kid --hmac)".into(),
            ));
        }
        None => match &a.settings.default_platform {
            Some(p) => (p.clone(), None),
            None => {
                return Err(Problem::external_account_required(
                    "no default platform is configured for accounts without EAB".into(),
                ));
            }
        },
    };
    let jwk_value = req
        .jwk_value
        .as_ref()
        .ok_or_else(|| Problem::malformed("jwk missing".into()))?;
    let canonical = Jwk::parse(jwk_value)?.canonical();
    let mut account = Stored::new(
        AcmeKind::Account,
        id.clone(),
        &platform,
        "valid",
        0,
        Account {
            jwk: canonical,
            contact: p.contact,
            platform: platform.clone(),
            eab_kid,
            created: now(),
        },
    );
    account.row.lookup = Some(thumbprint.clone());
    ops.insert(
        0,
        put_op(
            &account,
            "acme.account.created",
            &format!("acme:{id}"),
            true,
        ),
    );
    if let Err(e) = a.service.store().write(Op::Together(ops)).await {
        // The same key registered meanwhile (another request or instance): that account.
        if let Some(row) = store.acme_find(AcmeKind::Account, &thumbprint).await? {
            let existing: Stored<Account> = Stored::decode(row)?;
            let url = a.url(headers, &format!("/acme/account/{}", existing.row.id));
            return Ok(json_response(
                StatusCode::OK,
                account_json(&existing, None),
                Some(&url),
            ));
        }
        return Err(e.into());
    }
    tracing::info!(account = %id, %platform, "ACME account created");
    let url = a.url(headers, &format!("/acme/account/{id}"));
    Ok(json_response(
        StatusCode::CREATED,
        account_json(&account, p.external_account_binding.as_ref()),
        Some(&url),
    ))
}

#[derive(Deserialize)]
struct AccountUpdate {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    contact: Option<Vec<String>>,
}

pub async fn account(
    State(a): State<Arc<Acme>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(account_inner(&a, &id, &headers, &body).await)
}

async fn account_inner(a: &Acme, id: &str, headers: &HeaderMap, body: &[u8]) -> Answer {
    let path = format!("/acme/account/{id}");
    let req = a.authenticate(headers, &path, body, KeyFrom::Kid).await?;
    let mut account = req.account()?.clone();
    if account.row.id != id {
        return Err(Problem::unauthorized(
            "an account may only change itself".into(),
        ));
    }
    let actor = Acme::actor(&account);
    if !req.is_get() {
        let u: AccountUpdate = req.json()?;
        if let Some(contact) = u.contact {
            check_contacts(&contact)?;
            account.doc.contact = contact;
            a.put(&account, "acme.account.updated", &actor, false)
                .await?;
            account.row.version += 1;
        }
        match u.status.as_deref() {
            None => {}
            Some("deactivated") => {
                account.row.status = "deactivated".into();
                a.put(&account, "acme.account.deactivated", &actor, false)
                    .await?;
            }
            Some(s) => {
                return Err(Problem::malformed(format!(
                    "an account's status may only become \"deactivated\", not {s:?}"
                )));
            }
        }
    }
    Ok(json_response(
        StatusCode::OK,
        account_json(&account, None),
        Some(&a.url(headers, &path)),
    ))
}

pub async fn key_change(State(a): State<Arc<Acme>>, headers: HeaderMap, body: Bytes) -> Response {
    answer(key_change_inner(&a, &headers, &body).await)
}

async fn key_change_inner(a: &Acme, headers: &HeaderMap, body: &[u8]) -> Answer {
    let req = a
        .authenticate(headers, "/acme/key-change", body, KeyFrom::Kid)
        .await?;
    let mut account = req.account()?.clone();
    let inner = jws::parse(&req.payload)?;
    if inner.header.url.as_deref() != Some(req.url.as_str()) {
        return Err(Problem::unauthorized(
            "the inner JWS url differs from the outer".into(),
        ));
    }
    if inner.header.nonce.is_some() {
        return Err(Problem::malformed(
            "the inner JWS must not carry a nonce".into(),
        ));
    }
    let new_value =
        inner.header.jwk.as_ref().ok_or_else(|| {
            Problem::malformed("the inner JWS must carry the new key as jwk".into())
        })?;
    let new_key = Jwk::parse(new_value)?;
    new_key.verify(&inner.header.alg, &inner.signing_input, &inner.signature)?;
    let p: Value = serde_json::from_slice(&inner.payload)
        .map_err(|e| Problem::malformed(format!("inner payload: {e}")))?;
    let account_url = a.url(headers, &format!("/acme/account/{}", account.row.id));
    if p.get("account").and_then(Value::as_str) != Some(account_url.as_str()) {
        return Err(Problem::unauthorized(
            "the inner payload names another account".into(),
        ));
    }
    let old = p
        .get("oldKey")
        .ok_or_else(|| Problem::malformed("the inner payload has no oldKey".into()))?;
    if Jwk::parse(old)? != req.jwk {
        return Err(Problem::unauthorized(
            "oldKey is not the account's key".into(),
        ));
    }
    let thumbprint = new_key.thumbprint();
    if let Some(other) = a
        .service
        .store()
        .acme_find(AcmeKind::Account, &thumbprint)
        .await?
    {
        let mut conflict = json_response(
            StatusCode::CONFLICT,
            json!({"type": "urn:ietf:params:acme:error:malformed", "detail": "another account has this key", "status": 409}),
            Some(&a.url(headers, &format!("/acme/account/{}", other.id))),
        );
        conflict.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        return Ok(conflict);
    }
    account.doc.jwk = new_key.canonical();
    account.row.lookup = Some(thumbprint);
    a.put(
        &account,
        "acme.account.key_changed",
        &Acme::actor(&account),
        false,
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        account_json(&account, None),
        Some(&account_url),
    ))
}

// --- orders -------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewOrder {
    identifiers: Vec<Identifier>,
    #[serde(default)]
    not_before: Option<String>,
    #[serde(default)]
    not_after: Option<String>,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    replaces: Option<String>,
}

fn order_json(a: &Acme, headers: &HeaderMap, o: &Stored<Order>) -> Value {
    let mut v = json!({
        "status": o.row.status,
        "expires": rfc3339(o.row.expires),
        "identifiers": o.doc.identifiers,
        "authorizations": o.doc.authorizations.iter().map(|id| a.url(headers, &format!("/acme/authz/{id}"))).collect::<Vec<_>>(),
        "finalize": a.url(headers, &format!("/acme/order/{}/finalize", o.row.id)),
    });
    if let Some(p) = &o.doc.requested_profile {
        v["profile"] = Value::String(p.clone());
    }
    if let Some(r) = &o.doc.replaces {
        v["replaces"] = Value::String(r.clone());
    }
    if o.doc.certificate.is_some() {
        v["certificate"] = Value::String(a.url(headers, &format!("/acme/cert/{}", o.row.id)));
    }
    if let Some(e) = &o.doc.error {
        v["error"] = serde_json::to_value(e).unwrap_or(Value::Null);
    }
    v
}

/// A DNS identifier's value, normalised (lower case, "*." kept for wildcards).
fn dns_identifier(id: &Identifier) -> Result<String, Problem> {
    if id.kind != "dns" {
        return Err(Problem::unsupported_identifier(format!(
            "identifier type {:?} is not supported (dns)",
            id.kind
        )));
    }
    crate::core::names::dns_name(&id.value, true)
        .map_err(|e| Problem::rejected_identifier(format!("{:?}: {e}", id.value)))
}

pub async fn new_order(State(a): State<Arc<Acme>>, headers: HeaderMap, body: Bytes) -> Response {
    answer(new_order_inner(&a, &headers, &body).await)
}

async fn new_order_inner(a: &Acme, headers: &HeaderMap, body: &[u8]) -> Answer {
    let req = a
        .authenticate(headers, "/acme/new-order", body, KeyFrom::Kid)
        .await?;
    let account = req.account()?;
    let p: NewOrder = req.json()?;
    if p.identifiers.is_empty() || p.identifiers.len() > MAX_IDENTIFIERS {
        return Err(Problem::malformed(format!(
            "an order names 1 to {MAX_IDENTIFIERS} identifiers"
        )));
    }
    if p.not_before.is_some() || p.not_after.is_some() {
        return Err(Problem::malformed(
            "notBefore/notAfter are not accepted: validity comes from the profile".into(),
        ));
    }
    let profile = match &p.profile {
        None => a.settings.default_profile.clone(),
        Some(name) if a.settings.profiles.iter().any(|(n, _)| n == name) => name.clone(),
        Some(name) => {
            return Err(Problem::invalid_profile(format!(
                "profile {name:?} is not offered; the directory's meta.profiles lists them"
            )));
        }
    };
    let mut values = Vec::new();
    for id in &p.identifiers {
        let v = dns_identifier(id)?;
        if !values.contains(&v) {
            values.push(v);
        }
    }
    if let Some(r) = &p.replaces {
        let record = a.renewal_target(r).await?;
        if record.tenant != account.doc.platform {
            return Err(Problem::unauthorized(
                "replaces names another platform's certificate".into(),
            ));
        }
    }
    if let Err(e) = a
        .service
        .acme_admit_order(&account.doc.platform, &profile, &values)
        .await
    {
        return Err(match e {
            crate::error::Error::PermissionDenied(why) => {
                let mut prob = Problem::rejected_identifier(format!(
                    "this account (platform {}) may not order these names: {why}",
                    account.doc.platform
                ));
                prob.subproblems = values
                    .iter()
                    .filter(|v| why.contains(v.trim_start_matches("*.")))
                    .map(|v| Subproblem {
                        kind: prob.kind.clone(),
                        detail: why.clone(),
                        identifier: Identifier {
                            kind: "dns".into(),
                            value: v.clone(),
                        },
                    })
                    .collect();
                prob
            }
            other => other.into(),
        });
    }
    let expires = now() + ORDER_LIFETIME;
    let actor = Acme::actor(account);
    let mut ops = Vec::new();
    let mut authz_ids = Vec::new();
    for v in &values {
        let wildcard = v.starts_with("*.");
        let methods: &[&str] = if wildcard {
            &["dns-01"]
        } else {
            &["http-01", "dns-01", "tls-alpn-01"]
        };
        let authz = Stored::new(
            AcmeKind::Authz,
            new_id(),
            &account.row.id,
            "pending",
            expires,
            Authz {
                identifier: Identifier {
                    kind: "dns".into(),
                    value: v.trim_start_matches("*.").into(),
                },
                wildcard,
                challenges: methods
                    .iter()
                    .map(|m| Challenge {
                        kind: (*m).into(),
                        token: new_id(),
                        status: "pending".into(),
                        validated: None,
                        error: None,
                    })
                    .collect(),
            },
        );
        authz_ids.push(authz.row.id.clone());
        ops.push(put_op(&authz, "acme.authz.created", &actor, true));
    }
    let order = Stored::new(
        AcmeKind::Order,
        new_id(),
        &account.row.id,
        "pending",
        expires,
        Order {
            identifiers: values
                .iter()
                .map(|v| Identifier {
                    kind: "dns".into(),
                    value: v.clone(),
                })
                .collect(),
            authorizations: authz_ids,
            profile: profile.clone(),
            requested_profile: p.profile.clone(),
            replaces: p.replaces.clone(),
            certificate: None,
            error: None,
        },
    );
    ops.insert(0, put_op(&order, "acme.order.created", &actor, true));
    a.service.store().write(Op::Together(ops)).await?;
    let url = a.url(headers, &format!("/acme/order/{}", order.row.id));
    Ok(json_response(
        StatusCode::CREATED,
        order_json(a, headers, &order),
        Some(&url),
    ))
}

impl Acme {
    /// An order with its status brought up to date from its authorizations and the clock.
    async fn current_order(
        &self,
        id: &str,
        account: &Stored<Account>,
    ) -> Result<Stored<Order>, Problem> {
        let mut order: Stored<Order> = self.load_owned(AcmeKind::Order, id, account).await?;
        let status = order.row.status.clone();
        let next = if matches!(status.as_str(), "pending" | "ready") && now() > order.row.expires {
            Some("invalid")
        } else if status == "pending" {
            let mut all_valid = true;
            let mut failed = false;
            for authz_id in &order.doc.authorizations {
                let authz: Stored<Authz> =
                    self.load_owned(AcmeKind::Authz, authz_id, account).await?;
                match authz.row.status.as_str() {
                    "valid" => {}
                    "pending" => all_valid = false,
                    _ => failed = true,
                }
            }
            if failed {
                Some("invalid")
            } else if all_valid {
                Some("ready")
            } else {
                None
            }
        } else {
            None
        };
        if let Some(next) = next {
            order.row.status = next.into();
            // Another request may have moved it first: then its state is the one to show.
            let event = if next == "ready" {
                "acme.order.ready"
            } else {
                "acme.order.invalid"
            };
            match self.put(&order, event, &Self::actor(account), false).await {
                Ok(()) => order.row.version += 1,
                Err(_) => order = self.load_owned(AcmeKind::Order, id, account).await?,
            }
        }
        Ok(order)
    }
}

pub async fn order(
    State(a): State<Arc<Acme>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(order_inner(&a, &id, &headers, &body).await)
}

async fn order_inner(a: &Acme, id: &str, headers: &HeaderMap, body: &[u8]) -> Answer {
    let path = format!("/acme/order/{id}");
    let req = a.authenticate(headers, &path, body, KeyFrom::Kid).await?;
    let order = a.current_order(id, req.account()?).await?;
    let mut resp = json_response(StatusCode::OK, order_json(a, headers, &order), None);
    if order.row.status == "processing" {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(POLL_SECONDS));
    }
    Ok(resp)
}

// --- authorizations and challenges ---------------------------------------------------------

fn challenge_json(a: &Acme, headers: &HeaderMap, authz_id: &str, c: &Challenge) -> Value {
    let mut v = json!({
        "type": c.kind,
        "url": a.url(headers, &format!("/acme/chall/{authz_id}/{}", c.kind)),
        "token": c.token,
        "status": c.status,
    });
    if let Some(t) = c.validated {
        v["validated"] = Value::String(rfc3339(t));
    }
    if let Some(e) = &c.error {
        v["error"] = serde_json::to_value(e).unwrap_or(Value::Null);
    }
    v
}

fn authz_json(a: &Acme, headers: &HeaderMap, z: &Stored<Authz>) -> Value {
    let mut v = json!({
        "identifier": z.doc.identifier,
        "status": z.row.status,
        "expires": rfc3339(z.row.expires),
        "challenges": z.doc.challenges.iter().map(|c| challenge_json(a, headers, &z.row.id, c)).collect::<Vec<_>>(),
    });
    if z.doc.wildcard {
        v["wildcard"] = Value::Bool(true);
    }
    v
}

pub async fn authz(
    State(a): State<Arc<Acme>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(authz_inner(&a, &id, &headers, &body).await)
}

async fn authz_inner(a: &Acme, id: &str, headers: &HeaderMap, body: &[u8]) -> Answer {
    let path = format!("/acme/authz/{id}");
    let req = a.authenticate(headers, &path, body, KeyFrom::Kid).await?;
    let account = req.account()?;
    let mut z: Stored<Authz> = a.load_owned(AcmeKind::Authz, id, account).await?;
    if z.row.status == "pending" && now() > z.row.expires {
        z.row.status = "expired".into();
    }
    if !req.is_get() {
        let u: AccountUpdate = req.json()?;
        if u.status.as_deref() != Some("deactivated") {
            return Err(Problem::malformed(
                "an authorization's status may only become \"deactivated\"".into(),
            ));
        }
        if !matches!(z.row.status.as_str(), "pending" | "valid") {
            return Err(Problem::malformed(format!(
                "a {} authorization cannot be deactivated",
                z.row.status
            )));
        }
        z.row.status = "deactivated".into();
        a.put(&z, "acme.authz.deactivated", &Acme::actor(account), false)
            .await?;
    }
    let mut resp = json_response(StatusCode::OK, authz_json(a, headers, &z), None);
    if z.row.status == "pending" {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(POLL_SECONDS));
    }
    Ok(resp)
}

pub async fn challenge(
    State(a): State<Arc<Acme>>,
    Path((id, kind)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(challenge_inner(a, &id, &kind, &headers, &body).await)
}

async fn challenge_inner(
    a: Arc<Acme>,
    id: &str,
    kind: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Answer {
    let path = format!("/acme/chall/{id}/{kind}");
    let req = a.authenticate(headers, &path, body, KeyFrom::Kid).await?;
    let account = req.account()?.clone();
    let mut z: Stored<Authz> = a.load_owned(AcmeKind::Authz, id, &account).await?;
    let index = z
        .doc
        .challenges
        .iter()
        .position(|c| c.kind == kind)
        .ok_or_else(|| Problem::not_found(format!("no {kind} challenge in authorization {id}")))?;
    // One validation at a time per authorization.
    let start = !req.is_get()
        && z.row.status == "pending"
        && z.doc.challenges[index].status == "pending"
        && !z.doc.challenges.iter().any(|c| c.status == "processing")
        && now() <= z.row.expires;
    if start {
        let method = Method::parse(kind)
            .ok_or_else(|| Problem::malformed(format!("unknown challenge type {kind}")))?;
        z.doc.challenges[index].status = "processing".into();
        a.put(
            &z,
            "acme.challenge.processing",
            &Acme::actor(&account),
            false,
        )
        .await?;
        z.row.version += 1;
        let attempt = Attempt {
            method,
            domain: z.doc.identifier.value.clone(),
            wildcard: z.doc.wildcard,
            token: z.doc.challenges[index].token.clone(),
            key_authorization: format!(
                "{}.{}",
                z.doc.challenges[index].token,
                req.jwk.thumbprint()
            ),
        };
        let (acme, authz_id) = (a.clone(), id.to_string());
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let result = acme.validator.validate(&attempt).await;
            tracing::debug!(authz = %authz_id, method = ?attempt.method, ms = started.elapsed().as_millis() as u64, ok = result.is_ok(), "ACME validation");
            if let Err(e) = acme
                .record_validation(&authz_id, &account, index, result)
                .await
            {
                tracing::error!(authz = %authz_id, error = ?e, "recording a validation failed");
            }
        });
    }
    let mut resp = json_response(
        StatusCode::OK,
        challenge_json(&a, headers, id, &z.doc.challenges[index]),
        None,
    );
    link(
        &mut resp,
        &a.url(headers, &format!("/acme/authz/{id}")),
        "up",
    );
    if z.doc.challenges[index].status == "processing" {
        // Validation takes milliseconds here; clients otherwise wait their default (lego: 5 s).
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(POLL_SECONDS));
    }
    Ok(resp)
}

impl From<Failure> for Problem {
    fn from(f: Failure) -> Problem {
        match f {
            Failure::Dns(d) | Failure::Refused(d) => Problem::dns(d),
            Failure::Connection(d) => Problem::connection(d),
            Failure::IncorrectResponse(d) => Problem::incorrect_response(d),
            Failure::Tls(d) => Problem::tls(d),
            Failure::Caa(d) => Problem::caa(d),
        }
    }
}

impl Acme {
    /// Stores a validation's outcome: the challenge valid or invalid, and its authorization
    /// with it while still pending (a deactivated or expired one stays so). Retried when
    /// another change to the authorization came first.
    async fn record_validation(
        &self,
        authz_id: &str,
        account: &Stored<Account>,
        index: usize,
        result: Result<(), Failure>,
    ) -> Result<(), Problem> {
        let outcome = result.map_err(|f| {
            tracing::info!(authz = %authz_id, failure = ?f, "ACME validation failed");
            StoredProblem::from(&Problem::from(f))
        });
        let mut tries = 0;
        loop {
            tries += 1;
            let mut z: Stored<Authz> = self.load_owned(AcmeKind::Authz, authz_id, account).await?;
            let pending = z.row.status == "pending";
            let c = &mut z.doc.challenges[index];
            let event = match &outcome {
                Ok(()) => {
                    c.status = "valid".into();
                    c.validated = Some(now());
                    if pending {
                        z.row.status = "valid".into();
                    }
                    "acme.authz.valid"
                }
                Err(problem) => {
                    c.status = "invalid".into();
                    c.error = Some(problem.clone());
                    if pending {
                        z.row.status = "invalid".into();
                    }
                    "acme.authz.invalid"
                }
            };
            match self.put(&z, event, &Self::actor(account), false).await {
                Err(p) if tries < 3 && p.status == StatusCode::CONFLICT.as_u16() => continue,
                other => return other,
            }
        }
    }
}

// --- finalize and certificates ------------------------------------------------------------

#[derive(Deserialize)]
struct Finalize {
    csr: String,
}

/// The DNS names a CSR asks for: SANs and a CN, lower case.
fn csr_names(der: &[u8]) -> Result<Vec<String>, Problem> {
    use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509CertificationRequest};
    let (_, csr) = X509CertificationRequest::from_der(der)
        .map_err(|e| Problem::bad_csr(format!("the CSR does not parse: {e}")))?;
    let mut names = Vec::new();
    for cn in csr.certification_request_info.subject.iter_common_name() {
        let cn = cn
            .as_str()
            .map_err(|_| Problem::bad_csr("the CSR's CN is not a string".into()))?;
        names.push(cn.to_ascii_lowercase());
    }
    for ext in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for n in &san.general_names {
                match n {
                    GeneralName::DNSName(d) => names.push(d.to_ascii_lowercase()),
                    other => {
                        return Err(Problem::bad_csr(format!(
                            "the CSR asks for {other:?}; only DNS names are issued over ACME"
                        )));
                    }
                }
            }
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// Is the CSR's subject key this account key?
fn csr_key_is(der: &[u8], jwk: &Jwk) -> bool {
    use x509_parser::prelude::{FromDer, X509CertificationRequest};
    X509CertificationRequest::from_der(der)
        .is_ok_and(|(_, csr)| jwk.matches_spki(csr.certification_request_info.subject_pki.raw))
}

pub async fn finalize(
    State(a): State<Arc<Acme>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(finalize_inner(&a, &id, &headers, &body).await)
}

async fn finalize_inner(a: &Acme, id: &str, headers: &HeaderMap, body: &[u8]) -> Answer {
    let path = format!("/acme/order/{id}/finalize");
    let req = a.authenticate(headers, &path, body, KeyFrom::Kid).await?;
    let account = req.account()?;
    let mut order = a.current_order(id, account).await?;
    if order.row.status != "ready" {
        return Err(Problem::order_not_ready(format!(
            "the order is {}; finalize it once every authorization is valid",
            order.row.status
        )));
    }
    let f: Finalize = req.json()?;
    let csr = jws::unb64("csr", &f.csr)?;
    let mut wanted: Vec<String> = order
        .doc
        .identifiers
        .iter()
        .map(|i| i.value.clone())
        .collect();
    wanted.sort();
    let asked = csr_names(&csr)?;
    if csr_key_is(&csr, &req.jwk) {
        return Err(Problem::bad_csr(
            "the CSR's key is the account key; certify another key".into(),
        ));
    }
    if asked != wanted {
        return Err(Problem::bad_csr(format!(
            "the CSR names {asked:?} but the order is for {wanted:?}"
        )));
    }
    let actor = Acme::actor(account);
    order.row.status = "processing".into();
    a.put(&order, "acme.order.processing", &actor, false)
        .await?;
    order.row.version += 1;
    let caller = Service::acme_caller(&account.doc.platform, &account.row.id);
    let issued = a
        .service
        .issue(
            &caller,
            IssueRequest {
                csr,
                profile: order.doc.profile.clone(),
                validity_days: None,
                issuer: String::new(),
            },
        )
        .await;
    match issued {
        Ok(issued) => {
            order.row.status = "valid".into();
            order.doc.certificate = Some(issued.record.serial.clone());
            a.put(&order, "acme.order.valid", &actor, false).await?;
            tracing::info!(order = %id, serial = %issued.record.serial, "ACME certificate issued");
        }
        Err(e) => {
            let problem = Problem::from(e);
            // A rate limit leaves the order ready for a retry after Retry-After.
            let (status, event) = if problem.name() == "rateLimited" {
                ("ready", "acme.order.ready")
            } else {
                order.doc.error = Some(StoredProblem::from(&problem));
                ("invalid", "acme.order.invalid")
            };
            order.row.status = status.into();
            a.put(&order, event, &actor, false).await?;
            return Err(problem);
        }
    }
    let url = a.url(headers, &format!("/acme/order/{id}"));
    Ok(json_response(
        StatusCode::OK,
        order_json(a, headers, &order),
        Some(&url),
    ))
}

impl Acme {
    /// The certificate of a valid order of the account's, and its chain.
    async fn order_certificate(
        &self,
        id: &str,
        account: &Stored<Account>,
    ) -> Result<(Vec<u8>, Vec<Vec<u8>>), Problem> {
        let order: Stored<Order> = self.load_owned(AcmeKind::Order, id, account).await?;
        let serial = order
            .doc
            .certificate
            .as_deref()
            .ok_or_else(|| Problem::not_found(format!("order {id} has no certificate yet")))?;
        let serial = crate::core::serial::Serial::parse_hex(serial)?;
        let record = self
            .service
            .store()
            .get(&serial)
            .await?
            .ok_or_else(|| Problem::not_found(format!("certificate {serial}")))?;
        let chain = self
            .service
            .authority()
            .ca_cert_der(&record.ca)
            .into_iter()
            .collect();
        Ok((record.der, chain))
    }
}

fn pem_chain(leaf: &[u8], chain: &[Vec<u8>]) -> Response {
    let pem =
        crate::pemfile::certs_to_pem(std::iter::once(leaf).chain(chain.iter().map(Vec::as_slice)));
    let mut resp = (StatusCode::OK, pem).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pem-certificate-chain"),
    );
    resp
}

pub async fn certificate(
    State(a): State<Arc<Acme>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(certificate_inner(&a, &id, None, &headers, &body).await)
}

pub async fn alternate(
    State(a): State<Arc<Acme>>,
    Path((id, n)): Path<(String, usize)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(certificate_inner(&a, &id, Some(n), &headers, &body).await)
}

async fn certificate_inner(
    a: &Acme,
    id: &str,
    alternate: Option<usize>,
    headers: &HeaderMap,
    body: &[u8],
) -> Answer {
    let path = match alternate {
        Some(n) => format!("/acme/cert/{id}/{n}"),
        None => format!("/acme/cert/{id}"),
    };
    let req = a.authenticate(headers, &path, body, KeyFrom::Kid).await?;
    let (leaf, chain) = a.order_certificate(id, req.account()?).await?;
    let alternates = a.service.alternate_chains(&chain).await?;
    let mut resp = match alternate {
        None => pem_chain(&leaf, &chain),
        Some(n) => {
            let alt = alternates
                .get(n.wrapping_sub(1))
                .ok_or_else(|| Problem::not_found(format!("no alternate chain {n}")))?;
            pem_chain(&leaf, alt)
        }
    };
    for n in 1..=alternates.len() {
        if Some(n) != alternate {
            link(
                &mut resp,
                &a.url(headers, &format!("/acme/cert/{id}/{n}")),
                "alternate",
            );
        }
    }
    if alternate.is_some() {
        link(
            &mut resp,
            &a.url(headers, &format!("/acme/cert/{id}")),
            "alternate",
        );
    }
    Ok(resp)
}

// --- revocation -----------------------------------------------------------------------------

#[derive(Deserialize)]
struct Revoke {
    certificate: String,
    #[serde(default)]
    reason: Option<i64>,
}

pub async fn revoke(State(a): State<Arc<Acme>>, headers: HeaderMap, body: Bytes) -> Response {
    answer(
        revoke_inner(&a, &headers, &body)
            .await
            .map(|()| StatusCode::OK.into_response()),
    )
}

async fn revoke_inner(a: &Acme, headers: &HeaderMap, body: &[u8]) -> Result<(), Problem> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let req = a
        .authenticate(headers, "/acme/revoke-cert", body, KeyFrom::Either)
        .await?;
    let r: Revoke = req.json()?;
    let der = jws::unb64("certificate", &r.certificate)?;
    let (_, cert) = X509Certificate::from_der(&der)
        .map_err(|_| Problem::malformed("certificate does not parse".into()))?;
    let serial = crate::core::serial::Serial::from_der_content(cert.raw_serial());
    let unknown = || {
        Problem::unauthorized(
            "this certificate was not issued to this account's platform or key".into(),
        )
    };
    let record = a.service.store().get(&serial).await?.ok_or_else(unknown)?;
    if record.der != der {
        return Err(unknown());
    }
    let by = match &req.account {
        Some(acct) if acct.doc.platform == record.tenant => Acme::actor(acct),
        Some(_) => return Err(unknown()),
        None if req.jwk.matches_spki(cert.public_key().raw) => "acme:certificate-key".into(),
        None => return Err(unknown()),
    };
    let reason = match r.reason.unwrap_or(0) {
        code @ (0 | 1 | 3 | 4 | 5) => crate::core::revocation::Reason::from_code(code)?,
        code => {
            return Err(Problem::bad_revocation_reason(format!(
                "reason {code} is not accepted (0, 1, 3, 4, 5)"
            )));
        }
    };
    let caller = Service::acme_caller(&record.tenant, by.trim_start_matches("acme:"));
    match a
        .service
        .revoke(&caller, &record.serial, reason, None)
        .await
    {
        Ok(_) => Ok(()),
        Err(crate::error::Error::Conflict(_)) => Err(Problem::already_revoked(format!(
            "certificate {} is already revoked",
            record.serial
        ))),
        Err(e) => Err(e.into()),
    }
}

// --- renewal information (RFC 9773) ---------------------------------------------------------

impl Acme {
    /// The certificate an ARI identifier (base64url AKI "." base64url serial) names.
    async fn renewal_target(&self, id: &str) -> Result<crate::store::CertRecord, Problem> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let (aki, serial) = id
            .split_once('.')
            .ok_or_else(|| Problem::malformed("a renewal identifier is AKI.serial".into()))?;
        let aki = jws::unb64("renewal identifier", aki)?;
        let serial = jws::unb64("renewal identifier", serial)?;
        let serial = crate::core::serial::Serial::from_der_content(&serial);
        let record = self
            .service
            .store()
            .get(&serial)
            .await?
            .ok_or_else(|| Problem::not_found(format!("no certificate {serial}")))?;
        let (_, cert) = X509Certificate::from_der(&record.der)
            .map_err(|_| Problem::server_internal("stored certificate does not parse".into()))?;
        let matches = crate::service::acme::aki(&cert).is_some_and(|k| k == aki);
        if !matches {
            return Err(Problem::not_found(format!("no certificate {id}")));
        }
        Ok(record)
    }
}

pub async fn renewal_info(State(a): State<Arc<Acme>>, Path(id): Path<String>) -> Response {
    answer(renewal_info_inner(&a, &id).await)
}

async fn renewal_info_inner(a: &Acme, id: &str) -> Answer {
    let record = a.renewal_target(id).await?;
    let (start, end) = if record.revocation.is_some() {
        // Revoked: renew now.
        let t = now();
        (t - 86_400, t)
    } else {
        let life = record.not_after - record.not_before;
        (record.not_after - life / 3, record.not_after - life / 6)
    };
    let mut resp = json_body(
        StatusCode::OK,
        &json!({ "suggestedWindow": { "start": rfc3339(start), "end": rfc3339(end) } }),
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(21_600u64));
    Ok(resp)
}
