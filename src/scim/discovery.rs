//! The discovery documents (RFC 7644 §4, RFC 7643 §5–§7): ServiceProviderConfig,
//! ResourceTypes and Schemas, generated from the same definitions the server validates with,
//! so what scimd advertises is what it does. Pure: no I/O.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::{Value, json};

use super::bulk;
use super::list::{self, MAX_RESULTS};
use super::registry::Registry;
use super::resource::ResourceKind;
use super::schema::{self, GROUP_URN, Schema};

const SPC_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";

/// RFC 7643 §5. Each flag states what this build really supports. `max_payload` is the
/// largest request body scimd reads, a bulk request's included (`--max-body-bytes`).
pub fn service_provider_config(base: &str, max_payload: usize) -> Value {
    json!({
        "schemas": [SPC_URN],
        "patch": {"supported": true},
        // `maxOperations` is both the most operations of a bulk request and of a PATCH:
        // authentik splits a PATCH into chunks of it (see `bulk::MAX_OPERATIONS`).
        "bulk": {
            "supported": true,
            "maxOperations": bulk::MAX_OPERATIONS,
            "maxPayloadSize": max_payload,
        },
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        // RFC 9865: both index and cursor paging; cursors don't expire.
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": MAX_RESULTS,
            "maxPageSize": MAX_RESULTS,
        },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A bearer token created with `scimd token create`, sent as \
                            `Authorization: Bearer <token>`.",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}

/// RFC 7643 §6: the resource types, by id, with the extensions of `registry`
/// (`schemaExtensions` as `[{schema, required}]`).
pub fn resource_type(base: &str, id: &str, registry: &Registry) -> Option<Value> {
    let (kind, description) = if id.eq_ignore_ascii_case("User") {
        (ResourceKind::User, "User Account")
    } else if id.eq_ignore_ascii_case("Group") {
        (ResourceKind::Group, "Group")
    } else {
        return None;
    };
    let name = kind.name();
    let extensions: Vec<Value> = registry
        .extensions(kind)
        .iter()
        .map(|e| json!({"schema": e.schema.id, "required": e.required}))
        .collect();
    Some(json!({
        "schemas": [RESOURCE_TYPE_URN],
        "id": name,
        "name": name,
        "endpoint": format!("/{}", kind.endpoint()),
        "description": description,
        "schema": registry.core(kind).id,
        "schemaExtensions": extensions,
        "meta": {
            "resourceType": "ResourceType",
            "location": format!("{base}/ResourceTypes/{name}"),
        },
    }))
}

/// A ListResponse holding every document (discovery lists are never paged).
fn everything(all: Vec<Value>) -> Value {
    let page = list::Page {
        total: all.len() as u64,
        resources: all,
        next_cursor: None,
    };
    list::response(page, list::Paging::Index(1))
}

pub fn resource_types(base: &str, registry: &Registry) -> Value {
    let all: Vec<Value> = ["User", "Group"]
        .iter()
        .filter_map(|id| resource_type(base, id, registry))
        .collect();
    everything(all)
}

/// What a schema id needs escaped to be one path segment: an http(s) id's `/` (and `%`
/// itself); the other characters an id may have (`declare::check_id`) are fine in a segment.
const SEGMENT: &AsciiSet = &CONTROLS.add(b' ').add(b'/').add(b'%').add(b'?').add(b'#');

fn schema_doc(base: &str, s: &Schema) -> Value {
    let id = utf8_percent_encode(&s.id, SEGMENT);
    let mut doc = schema::schema_json(s, &format!("{base}/Schemas/{id}"));
    if s.id == GROUP_URN {
        unpublish_member_display(&mut doc);
    }
    doc
}

/// `members.display` stays in the Group definition so a client may send it (Okta does; being
/// read-only, it is ignored, not unknown input), but scimd never returns it: deriving it would
/// cost a read per member on every read of a large group, and would change a group's
/// representation without changing its version when a member is renamed. So it is not
/// published either: `/Schemas` lists members as RFC 7643 §8.7.1 does (`value`, `$ref`, `type`).
fn unpublish_member_display(doc: &mut Value) {
    let attributes = doc.get_mut("attributes").and_then(Value::as_array_mut);
    for members in attributes
        .into_iter()
        .flatten()
        .filter(|a| a["name"] == "members")
    {
        if let Some(subs) = members
            .get_mut("subAttributes")
            .and_then(Value::as_array_mut)
        {
            subs.retain(|sub| sub["name"] != "display");
        }
    }
}

/// The schemas of `registry` in `/Schemas` order: each resource type's core schema followed
/// by its extensions. Undeclared extensions are data, not schemas: never listed.
fn listed(registry: &Registry) -> impl Iterator<Item = &Schema> {
    [ResourceKind::User, ResourceKind::Group]
        .into_iter()
        .flat_map(move |kind| {
            std::iter::once(&**registry.core(kind))
                .chain(registry.extensions(kind).iter().map(|e| &*e.schema))
        })
}

/// RFC 7643 §7: one schema by URN (compared case-insensitively).
pub fn schema(base: &str, id: &str, registry: &Registry) -> Option<Value> {
    listed(registry)
        .find(|s| s.id.eq_ignore_ascii_case(id))
        .map(|s| schema_doc(base, s))
}

pub fn schemas(base: &str, registry: &Registry) -> Value {
    let all: Vec<Value> = listed(registry).map(|s| schema_doc(base, s)).collect();
    everything(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::registry::testing::{ACME, acme};
    use crate::scim::schema::{ENTERPRISE_USER_URN, USER_URN};

    #[test]
    fn resource_types_point_at_their_schemas() {
        let r = Registry::builtin();
        let user = resource_type("b", "user", &r).unwrap();
        assert_eq!(user["schema"], json!(USER_URN));
        assert_eq!(
            user["schemaExtensions"][0]["schema"],
            json!(ENTERPRISE_USER_URN)
        );
        assert_eq!(user["meta"]["location"], json!("b/ResourceTypes/User"));
        assert!(resource_type("b", "Device", &r).is_none());
        assert_eq!(resource_types("b", &r)["totalResults"], json!(2));
        assert_eq!(
            resource_type("b", "Group", &r).unwrap()["schemaExtensions"],
            json!([])
        );
    }

    #[test]
    fn declared_extensions_are_advertised() {
        let r = acme();
        assert_eq!(
            resource_type("b", "User", &r).unwrap()["schemaExtensions"],
            json!([{"schema": ENTERPRISE_USER_URN, "required": false},
                   {"schema": ACME, "required": false}])
        );
        assert_eq!(
            resource_type("b", "Group", &r).unwrap()["schemaExtensions"],
            json!([{"schema": "urn:acme:2.0:Group", "required": false}])
        );
        let all = schemas("b", &r);
        let ids: Vec<&str> = all["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                USER_URN,
                ENTERPRISE_USER_URN,
                ACME,
                GROUP_URN,
                "urn:acme:2.0:Group"
            ]
        );
        let doc = schema("b", "URN:ACME:2.0:USER", &r).unwrap();
        assert_eq!(doc["id"], json!(ACME));
        assert_eq!(doc["meta"]["location"], json!(format!("b/Schemas/{ACME}")));
        assert!(schema("b", ACME, &Registry::builtin()).is_none());
    }

    #[test]
    fn schemas_cover_user_extension_and_group() {
        let r = Registry::builtin();
        let all = schemas("b", &r);
        let ids: Vec<&str> = all["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [USER_URN, ENTERPRISE_USER_URN, GROUP_URN]);
        assert!(schema("b", GROUP_URN, &r).is_some());
        assert!(schema("b", "urn:nope", &r).is_none());
    }

    #[test]
    fn group_members_are_published_without_display() {
        let r = Registry::builtin();
        let group = schema("b", GROUP_URN, &r).unwrap();
        let members = group["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "members")
            .unwrap();
        let subs: Vec<&str> = members["subAttributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(subs, ["value", "$ref", "type"]);
        // The list says the same, and the definition still knows it, to accept it on input.
        let listed = schemas("b", &r)["Resources"][2].clone();
        assert_eq!(listed, group);
        let known = schema::GROUP.attribute("members").unwrap().sub("display");
        assert!(known.is_some());
        // The User's multi-valued attributes keep theirs: scimd stores and returns them.
        let user = schema("b", USER_URN, &r).unwrap().to_string();
        assert!(user.contains("\"display\""));
    }

    #[test]
    fn spc_advertises_the_page_and_bulk_limits() {
        let spc = service_provider_config("b", 4096);
        assert_eq!(spc["filter"]["maxResults"], json!(MAX_RESULTS));
        assert_eq!(spc["patch"]["supported"], json!(true));
        assert_eq!(spc["etag"]["supported"], json!(true));
        assert_eq!(
            spc["bulk"],
            json!({"supported": true, "maxOperations": 1000, "maxPayloadSize": 4096})
        );
        // authentik's PATCH chunk size: never more than a PATCH takes.
        let patch_max = crate::scim::patch::MAX_OPERATIONS;
        assert_eq!(spc["bulk"]["maxOperations"], json!(patch_max));
    }
}
