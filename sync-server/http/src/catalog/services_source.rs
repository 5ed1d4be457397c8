//! Registered outside services (`/services`, issue 20) as catalog records, so a search of the
//! catalog finds another department's WMS next to the platform's own layers. Each record links
//! to the service's proxy, never to its outside address (the registry does not give it out).
//!
//! Who sees them: staff (admin, office, inspector), the users who can call the proxy with their
//! own token; citizens and anonymous callers reach services only with an API key, which an
//! administrator hands out, so listing the pool to them would advertise what they cannot open.

use std::sync::Arc;

use shikong_auth::Role;
use shikong_model::Bbox;

use super::{CatalogSource, Entry, Kind, link};
use crate::AppState;
use crate::access::Caller;
use crate::problem::ApiResult;
use crate::services::registered_services;

/// The registry as a [`CatalogSource`]; added to every server's catalog in `AppState::new`.
#[derive(Debug, Default)]
pub struct ServicesSource;

impl CatalogSource for ServicesSource {
    fn entries(&self, state: &AppState, caller: &Caller, base: &str) -> ApiResult<Vec<Arc<Entry>>> {
        let staff =
            caller.principal.as_ref().is_some_and(|p| matches!(p.role, Role::Admin | Role::Office | Role::Inspector));
        if !staff {
            return Ok(Vec::new());
        }
        Ok(registered_services(state)?
            .into_iter()
            .map(|s| {
                let kind = s.kind.as_str();
                let bbox = s
                    .layers
                    .iter()
                    .filter_map(|l| l.bbox)
                    .reduce(|a, b| [a[0].min(b[0]), a[1].min(b[1]), a[2].max(b[2]), a[3].max(b[3])]);
                let mut keywords = vec!["服务".to_owned(), "service".into(), kind.to_owned()];
                for l in &s.layers {
                    keywords.push(l.name.clone());
                    keywords.extend(l.title.clone().filter(|t| *t != l.name));
                }
                let layers: Vec<&str> = s.layers.iter().map(|l| l.title.as_deref().unwrap_or(&l.name)).collect();
                let health = match s.up {
                    Some(true) => "在线",
                    Some(false) => "下线",
                    None => "未检查",
                };
                Arc::new(Entry {
                    text: Default::default(),
                    id: format!("service:{}", s.id),
                    kind: Kind::Service,
                    title: s.title,
                    description: format!(
                        "已注册的外部 {kind} 服务（{health}），经平台代理访问；图层：{}",
                        layers.join("、")
                    ),
                    keywords,
                    themes: Vec::new(),
                    bbox: bbox.and_then(|b| Bbox::new(b[0], b[1], b[2], b[3]).ok()),
                    time: None,
                    created: Some(s.created_at),
                    updated: None,
                    count: None,
                    fields: Vec::new(),
                    external_ids: vec![("shikong:service".into(), s.id.clone())],
                    links: vec![
                        link(format!("{base}{}", s.proxy_path), "service", "application/octet-stream", "proxy"),
                        link(format!("{base}/services/{}", s.id), "describedby", "application/json", "registration"),
                    ],
                })
            })
            .collect())
    }
}
