//! Attribute definitions for the resources scimd serves (RFC 7643 §4, §8.7): the core User,
//! the Enterprise User extension and the Group.
//!
//! Everything that needs to know the shape of a resource reads it from here: body validation,
//! filters (case-exactness, types), projection (`returned`) and the discovery endpoints
//! (`/Schemas`), so what the server advertises is exactly what it enforces.
//! Pure data; no I/O.

use std::sync::{Arc, LazyLock};

use serde_json::{Map, Value};

/// RFC 7643 §2.3 data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

impl Kind {
    /// The RFC 7643 §7 `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Boolean => "boolean",
            Kind::Decimal => "decimal",
            Kind::Integer => "integer",
            Kind::DateTime => "dateTime",
            Kind::Binary => "binary",
            Kind::Reference => "reference",
            Kind::Complex => "complex",
        }
    }
}

/// RFC 7643 §7 `mutability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

impl Mutability {
    /// The RFC 7643 §7 `mutability` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

/// RFC 7643 §7 `returned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

impl Returned {
    /// The RFC 7643 §7 `returned` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

/// RFC 7643 §7 `uniqueness`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

impl Uniqueness {
    /// The RFC 7643 §7 `uniqueness` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
            Uniqueness::Global => "global",
        }
    }
}

/// One attribute definition (RFC 7643 §7). Owned data: the built-in schemas are made once at
/// first use, declared ones from their JSON documents. Sub-attributes sit behind `Arc` so a bound
/// filter or path can hold one cheaply, whichever schema it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub name: String,
    pub kind: Kind,
    pub multi_valued: bool,
    pub description: String,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical_values: Vec<String>,
    pub reference_types: Vec<String>,
    pub sub_attributes: Vec<Arc<Attribute>>,
}

impl Attribute {
    /// A singular, optional, readWrite, default-returned, non-unique, case-insensitive
    /// attribute: the RFC 7643 §2.2 defaults. Adjust with the builder methods.
    pub fn new(name: &str, kind: Kind, description: &str) -> Self {
        Attribute {
            name: name.into(),
            kind,
            multi_valued: false,
            description: description.into(),
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: Vec::new(),
            reference_types: Vec::new(),
            sub_attributes: Vec::new(),
        }
    }
    pub fn string(name: &str, description: &str) -> Self {
        Self::new(name, Kind::String, description)
    }
    pub fn boolean(name: &str, description: &str) -> Self {
        Self::new(name, Kind::Boolean, description)
    }
    pub fn date_time(name: &str, description: &str) -> Self {
        Self::new(name, Kind::DateTime, description)
    }
    pub fn binary(name: &str, description: &str) -> Self {
        Self::new(name, Kind::Binary, description)
    }
    pub fn complex(name: &str, description: &str, sub_attributes: Vec<Attribute>) -> Self {
        let mut a = Self::new(name, Kind::Complex, description);
        a.sub_attributes = arcs(sub_attributes);
        a
    }
    pub fn reference(name: &str, description: &str, reference_types: &[&str]) -> Self {
        let mut a = Self::new(name, Kind::Reference, description);
        a.reference_types = strings(reference_types);
        a
    }
    pub fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    pub fn mutability(mut self, m: Mutability) -> Self {
        self.mutability = m;
        self
    }
    pub fn returned(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }
    pub fn uniqueness(mut self, u: Uniqueness) -> Self {
        self.uniqueness = u;
        self
    }
    pub fn canonical(mut self, values: &[&str]) -> Self {
        self.canonical_values = strings(values);
        self
    }

    /// The sub-attribute called `name`, compared case-insensitively (RFC 7643 §2.1).
    pub fn sub(&self, name: &str) -> Option<&Attribute> {
        find(&self.sub_attributes, name)
    }
}

fn arcs(attributes: Vec<Attribute>) -> Vec<Arc<Attribute>> {
    attributes.into_iter().map(Arc::new).collect()
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

fn find<'a>(attributes: &'a [Arc<Attribute>], name: &str) -> Option<&'a Attribute> {
    attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
        .map(|a| &**a)
}

/// A schema: a URN plus its attributes (RFC 7643 §7).
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub id: String,
    pub name: String,
    pub description: String,
    pub attributes: Vec<Arc<Attribute>>,
}

impl Schema {
    /// The attribute called `name`, compared case-insensitively (RFC 7643 §2.1).
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        find(&self.attributes, name)
    }
}

pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_USER_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// URN of the schema that describes schemas (RFC 7643 §7), used in `/Schemas` responses.
pub const SCHEMA_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

// ---------------------------------------------------------------------------------------------
// Building blocks shared by the multi-valued attributes (RFC 7643 §2.4). Only text the RFC
// repeats verbatim is shared; where §8.7.1 words a sub-attribute differently, the attribute
// spells it out.
// ---------------------------------------------------------------------------------------------

const DISPLAY_DESCRIPTION: &str =
    "A human-readable name, primarily used for display purposes.  READ-ONLY.";

/// `display` exactly as RFC 7643 §8.7.1 defines it for the User's multi-valued attributes
/// (its text says READ-ONLY, but the RFC's schema declares it readWrite).
fn display() -> Attribute {
    Attribute::string("display", DISPLAY_DESCRIPTION)
}

/// A `type` sub-attribute with its RFC wording and canonical values.
fn type_sub(description: &str, canonical: &[&str]) -> Attribute {
    Attribute::string("type", description).canonical(canonical)
}

/// `type` as entitlements, roles and x509Certificates define it: no canonical values.
fn type_free() -> Attribute {
    type_sub("A label indicating the attribute's function.", &[])
}

/// A `primary` sub-attribute with its RFC wording.
fn primary_sub(description: &str) -> Attribute {
    Attribute::boolean("primary", description)
}

/// `primary` as entitlements, roles and x509Certificates define it.
fn primary_plain() -> Attribute {
    primary_sub(
        "A Boolean value indicating the 'primary' or preferred attribute value for this \
         attribute.  The primary attribute value 'true' MUST appear no more than once.",
    )
}

/// `primary` as emails defines it; addresses reuses it (its text names mailing addresses).
fn primary_email_or_address() -> Attribute {
    primary_sub(
        "A Boolean value indicating the 'primary' or preferred attribute value for this \
         attribute, e.g., the preferred mailing address or primary email address.  The \
         primary attribute value 'true' MUST appear no more than once.",
    )
}

const WORK_HOME_OTHER: &[&str] = &["work", "home", "other"];

const EMAILS_DESCRIPTION: &str = "Email addresses for the user.  The value SHOULD be \
     canonicalized by the service provider, e.g., 'bjensen@example.com' instead of \
     'bjensen@EXAMPLE.COM'. Canonical type values of 'work', 'home', and 'other'.";

/// The core User schema, RFC 7643 §4.1 as represented in §8.7.1.
pub static USER: LazyLock<Schema> = LazyLock::new(|| Schema {
    id: USER_URN.into(),
    name: "User".into(),
    description: "User Account".into(),
    attributes: arcs(vec![
        Attribute::string(
            "userName",
            "Unique identifier for the User, typically used by the user to directly \
             authenticate to the service provider. Each User MUST include a non-empty userName \
             value.  This identifier MUST be unique across the service provider's entire set of \
             Users. REQUIRED.",
        )
        .required()
        .uniqueness(Uniqueness::Server),
        Attribute::complex(
            "name",
            "The components of the user's real name. Providers MAY return just the full name as \
             a single string in the formatted sub-attribute, or they MAY return just the \
             individual component attributes using the other sub-attributes, or they MAY return \
             both.  If both variants are returned, they SHOULD be describing the same name, with \
             the formatted name indicating how the component attributes should be combined.",
            vec![
                Attribute::string(
                    "formatted",
                    "The full name, including all middle names, titles, and suffixes as \
                     appropriate, formatted for display (e.g., 'Ms. Barbara J Jensen, III').",
                ),
                Attribute::string(
                    "familyName",
                    "The family name of the User, or last name in most Western languages (e.g., \
                     'Jensen' given the full name 'Ms. Barbara J Jensen, III').",
                ),
                Attribute::string(
                    "givenName",
                    "The given name of the User, or first name in most Western languages (e.g., \
                     'Barbara' given the full name 'Ms. Barbara J Jensen, III').",
                ),
                Attribute::string(
                    "middleName",
                    "The middle name(s) of the User (e.g., 'Jane' given the full name 'Ms. \
                     Barbara J Jensen, III').",
                ),
                Attribute::string(
                    "honorificPrefix",
                    "The honorific prefix(es) of the User, or title in most Western languages \
                     (e.g., 'Ms.' given the full name 'Ms. Barbara J Jensen, III').",
                ),
                Attribute::string(
                    "honorificSuffix",
                    "The honorific suffix(es) of the User, or suffix in most Western languages \
                     (e.g., 'III' given the full name 'Ms. Barbara J Jensen, III').",
                ),
            ],
        ),
        Attribute::string(
            "displayName",
            "The name of the User, suitable for display to end-users.  The name SHOULD be the \
             full name of the User being described, if known.",
        ),
        Attribute::string(
            "nickName",
            "The casual way to address the user in real life, e.g., 'Bob' or 'Bobby' instead of \
             'Robert'.  This attribute SHOULD NOT be used to represent a User's username (e.g., \
             'bjensen' or 'mpepperidge').",
        ),
        Attribute::reference(
            "profileUrl",
            "A fully qualified URL pointing to a page representing the User's online profile.",
            &["external"],
        ),
        Attribute::string("title", "The user's title, such as \"Vice President.\""),
        Attribute::string(
            "userType",
            "Used to identify the relationship between the organization and the user.  Typical \
             values used might be 'Contractor', 'Employee', 'Intern', 'Temp', 'External', and \
             'Unknown', but any value may be used.",
        ),
        Attribute::string(
            "preferredLanguage",
            "Indicates the User's preferred written or spoken language.  Generally used for \
             selecting a localized user interface; e.g., 'en_US' specifies the language English \
             and country US.",
        ),
        Attribute::string(
            "locale",
            "Used to indicate the User's default location for purposes of localizing items such \
             as currency, date time format, or numerical representations.",
        ),
        Attribute::string(
            "timezone",
            "The User's time zone in the 'Olson' time zone database format, e.g., \
             'America/Los_Angeles'.",
        ),
        Attribute::boolean(
            "active",
            "A Boolean value indicating the User's administrative status.",
        ),
        Attribute::string(
            "password",
            "The User's cleartext password.  This attribute is intended to be used as a means to \
             specify an initial password when creating a new User or to reset an existing User's \
             password.",
        )
        .mutability(Mutability::WriteOnly)
        .returned(Returned::Never),
        Attribute::complex(
            "emails",
            EMAILS_DESCRIPTION,
            vec![
                Attribute::string("value", EMAILS_DESCRIPTION),
                display(),
                type_sub(
                    "A label indicating the attribute's function, e.g., 'work' or 'home'.",
                    WORK_HOME_OTHER,
                ),
                primary_email_or_address(),
            ],
        )
        .multi(),
        Attribute::complex(
            "phoneNumbers",
            "Phone numbers for the User.  The value SHOULD be canonicalized by the service \
             provider according to the format specified in RFC 3966, e.g., \
             'tel:+1-201-555-0123'. Canonical type values of 'work', 'home', 'mobile', 'fax', \
             'pager', and 'other'.",
            vec![
                Attribute::string("value", "Phone number of the User."),
                display(),
                type_sub(
                    "A label indicating the attribute's function, e.g., 'work', 'home', \
                     'mobile'.",
                    &["work", "home", "mobile", "fax", "pager", "other"],
                ),
                primary_sub(
                    "A Boolean value indicating the 'primary' or preferred attribute value for \
                     this attribute, e.g., the preferred phone number or primary phone number.  \
                     The primary attribute value 'true' MUST appear no more than once.",
                ),
            ],
        )
        .multi(),
        Attribute::complex(
            "ims",
            "Instant messaging addresses for the User.",
            vec![
                Attribute::string("value", "Instant messaging address for the User."),
                display(),
                type_sub(
                    "A label indicating the attribute's function, e.g., 'aim', 'gtalk', 'xmpp'.",
                    &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
                ),
                primary_sub(
                    "A Boolean value indicating the 'primary' or preferred attribute value for \
                     this attribute, e.g., the preferred messenger or primary messenger.  The \
                     primary attribute value 'true' MUST appear no more than once.",
                ),
            ],
        )
        .multi(),
        Attribute::complex(
            "photos",
            "URLs of photos of the User.",
            vec![
                Attribute::reference("value", "URL of a photo of the User.", &["external"]),
                display(),
                type_sub(
                    "A label indicating the attribute's function, i.e., 'photo' or 'thumbnail'.",
                    &["photo", "thumbnail"],
                ),
                primary_sub(
                    "A Boolean value indicating the 'primary' or preferred attribute value for \
                     this attribute, e.g., the preferred photo or thumbnail.  The primary \
                     attribute value 'true' MUST appear no more than once.",
                ),
            ],
        )
        .multi(),
        Attribute::complex(
            "addresses",
            "A physical mailing address for this User. Canonical type values of 'work', 'home', \
             and 'other'.  This attribute is a complex type with the following sub-attributes.",
            vec![
                Attribute::string(
                    "formatted",
                    "The full mailing address, formatted for display or use with a mailing \
                     label.  This attribute MAY contain newlines.",
                ),
                Attribute::string(
                    "streetAddress",
                    "The full street address component, which may include house number, street \
                     name, P.O. box, and multi-line extended street address information.  This \
                     attribute MAY contain newlines.",
                ),
                Attribute::string("locality", "The city or locality component."),
                Attribute::string("region", "The state or region component."),
                Attribute::string("postalCode", "The zip code or postal code component."),
                Attribute::string("country", "The country name component."),
                type_sub(
                    "A label indicating the attribute's function, e.g., 'work' or 'home'.",
                    WORK_HOME_OTHER,
                ),
                // §8.7.1 omits it, but §4.1.2 and §2.4 give addresses a `primary`.
                primary_email_or_address(),
            ],
        )
        .multi(),
        Attribute::complex(
            "groups",
            "A list of groups to which the user belongs, either through direct membership, \
             through nested groups, or dynamically calculated.",
            vec![
                Attribute::string("value", "The identifier of the User's group.")
                    .mutability(Mutability::ReadOnly),
                Attribute::reference(
                    "$ref",
                    "The URI of the corresponding 'Group' resource to which the user belongs.",
                    &["User", "Group"],
                )
                .mutability(Mutability::ReadOnly),
                display().mutability(Mutability::ReadOnly),
                type_sub(
                    "A label indicating the attribute's function, e.g., 'direct' or 'indirect'.",
                    &["direct", "indirect"],
                )
                .mutability(Mutability::ReadOnly),
            ],
        )
        .multi()
        .mutability(Mutability::ReadOnly),
        Attribute::complex(
            "entitlements",
            "A list of entitlements for the User that represent a thing the User has.",
            vec![
                Attribute::string("value", "The value of an entitlement."),
                display(),
                type_free(),
                primary_plain(),
            ],
        )
        .multi(),
        Attribute::complex(
            "roles",
            "A list of roles for the User that collectively represent who the User is, e.g., \
             'Student', 'Faculty'.",
            vec![
                Attribute::string("value", "The value of a role."),
                display(),
                type_free(),
                primary_plain(),
            ],
        )
        .multi(),
        Attribute::complex(
            "x509Certificates",
            "A list of certificates issued to the User.",
            vec![
                Attribute::binary("value", "The value of an X.509 certificate."),
                display(),
                type_free(),
                primary_plain(),
            ],
        )
        .multi(),
    ]),
});

/// The Enterprise User extension, RFC 7643 §4.3 as represented in §8.7.1.
pub static ENTERPRISE_USER: LazyLock<Schema> = LazyLock::new(|| Schema {
    id: ENTERPRISE_USER_URN.into(),
    name: "EnterpriseUser".into(),
    description: "Enterprise User".into(),
    attributes: arcs(vec![
        Attribute::string(
            "employeeNumber",
            "Numeric or alphanumeric identifier assigned to a person, typically based on order \
             of hire or association with an organization.",
        ),
        Attribute::string("costCenter", "Identifies the name of a cost center."),
        Attribute::string("organization", "Identifies the name of an organization."),
        Attribute::string("division", "Identifies the name of a division."),
        Attribute::string("department", "Identifies the name of a department."),
        Attribute::complex(
            "manager",
            "The User's manager.  A complex type that optionally allows service providers to \
             represent organizational hierarchy by referencing the 'id' attribute of another \
             User.",
            vec![
                // "REQUIRED." in the text, yet `"required": false` in §8.7.1: a manager may be
                // given by `value` or `$ref` alone.
                Attribute::string(
                    "value",
                    "The id of the SCIM resource representing the User's manager.  REQUIRED.",
                ),
                Attribute::reference(
                    "$ref",
                    "The URI of the SCIM resource representing the User's manager.  REQUIRED.",
                    &["User"],
                ),
                Attribute::string(
                    "displayName",
                    "The displayName of the User's manager. OPTIONAL and READ-ONLY.",
                )
                .mutability(Mutability::ReadOnly),
            ],
        ),
    ]),
});

/// The core Group schema, RFC 7643 §4.2 as represented in §8.7.1, with two scimd choices:
/// `displayName` is required (as its own text says, and as the RFC 7643 errata correct) and unique
/// server-wide, and `members.display` (named in §4.2's prose) is declared read-only so a
/// client may send it (Okta does). scimd neither stores nor returns it: §8.7.1 does not list
/// it, and clients that compare a group's members with what they sent expect it absent.
pub static GROUP: LazyLock<Schema> = LazyLock::new(|| Schema {
    id: GROUP_URN.into(),
    name: "Group".into(),
    description: "Group".into(),
    attributes: arcs(vec![
        Attribute::string(
            "displayName",
            "A human-readable name for the Group. REQUIRED.",
        )
        .required()
        .uniqueness(Uniqueness::Server),
        Attribute::complex(
            "members",
            "A list of members of the Group.",
            vec![
                Attribute::string("value", "Identifier of the member of this Group.")
                    .mutability(Mutability::Immutable),
                Attribute::reference(
                    "$ref",
                    "The URI corresponding to a SCIM resource that is a member of this Group.",
                    &["User", "Group"],
                )
                .mutability(Mutability::Immutable),
                type_sub(
                    "A label indicating the type of resource, e.g., 'User' or 'Group'.",
                    &["User", "Group"],
                )
                .mutability(Mutability::Immutable),
                display().mutability(Mutability::ReadOnly),
            ],
        )
        .multi(),
    ]),
});

/// The attributes every resource carries (RFC 7643 §3.1). They belong to no schema, so they
/// are not listed in `/Schemas`, but validation, filtering and projection need them. `id` is
/// not `required` here because clients never send it: the service provider assigns it.
pub static COMMON: LazyLock<Vec<Arc<Attribute>>> = LazyLock::new(|| {
    arcs(vec![
    Attribute::string(
        "id",
        "A unique identifier for a SCIM resource as defined by the service provider.",
    )
    .case_exact()
    .mutability(Mutability::ReadOnly)
    .returned(Returned::Always)
    .uniqueness(Uniqueness::Server),
    Attribute::string(
        "externalId",
        "A String that is an identifier for the resource as defined by the provisioning client.",
    )
    .case_exact(),
    Attribute::complex(
        "meta",
        "A complex attribute containing resource metadata.",
        vec![
            Attribute::string(
                "resourceType",
                "The name of the resource type of the resource.",
            )
            .case_exact()
            .mutability(Mutability::ReadOnly),
            Attribute::date_time(
                "created",
                "The \"DateTime\" that the resource was added to the service provider.",
            )
            .mutability(Mutability::ReadOnly),
            Attribute::date_time(
                "lastModified",
                "The most recent DateTime that the details of this resource were updated at the \
                 service provider.",
            )
            .mutability(Mutability::ReadOnly),
            Attribute::reference(
                "location",
                "The URI of the resource being returned.",
                &["uri"],
            )
            .case_exact()
            .mutability(Mutability::ReadOnly),
            Attribute::string("version", "The version of the resource being returned.")
                .case_exact()
                .mutability(Mutability::ReadOnly),
        ],
    )
    .mutability(Mutability::ReadOnly),
    ])
});

/// The common attribute (RFC 7643 §3.1) called `name`, compared case-insensitively.
pub fn common_attribute(name: &str) -> Option<&'static Attribute> {
    find(&COMMON, name)
}

/// Every schema scimd serves, in `/Schemas` order.
pub fn all_schemas() -> [&'static Schema; 3] {
    [&*USER, &*ENTERPRISE_USER, &*GROUP]
}

/// The schema whose URN is `id`, compared case-insensitively (RFC 7643 §2.1 treats schema
/// URIs as case-insensitive).
pub fn find_schema(id: &str) -> Option<&'static Schema> {
    all_schemas()
        .into_iter()
        .find(|s| s.id.eq_ignore_ascii_case(id))
}

/// The RFC 7643 §7 representation of `schema`, as served at `/Schemas/{id}`; `location` is the
/// absolute URL of that endpoint, echoed in `meta.location`.
pub fn schema_json(schema: &Schema, location: &str) -> Value {
    let mut meta = Map::new();
    meta.insert("resourceType".into(), "Schema".into());
    meta.insert("location".into(), location.into());

    let mut out = Map::new();
    out.insert("schemas".into(), Value::from(vec![SCHEMA_URN]));
    out.insert("id".into(), schema.id.as_str().into());
    // Both are optional (RFC 7643 §7): a declaration without them shows none, not "".
    if !schema.name.is_empty() {
        out.insert("name".into(), schema.name.as_str().into());
    }
    if !schema.description.is_empty() {
        out.insert("description".into(), schema.description.as_str().into());
    }
    out.insert("attributes".into(), attributes_json(&schema.attributes));
    out.insert("meta".into(), Value::Object(meta));
    Value::Object(out)
}

fn attributes_json(attributes: &[Arc<Attribute>]) -> Value {
    Value::Array(attributes.iter().map(|a| attribute_json(a)).collect())
}

fn attribute_json(a: &Attribute) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), a.name.as_str().into());
    m.insert("type".into(), a.kind.as_str().into());
    m.insert("multiValued".into(), a.multi_valued.into());
    m.insert("description".into(), a.description.as_str().into());
    m.insert("required".into(), a.required.into());
    m.insert("caseExact".into(), a.case_exact.into());
    m.insert("mutability".into(), a.mutability.as_str().into());
    m.insert("returned".into(), a.returned.as_str().into());
    m.insert("uniqueness".into(), a.uniqueness.as_str().into());
    if !a.canonical_values.is_empty() {
        m.insert("canonicalValues".into(), a.canonical_values.clone().into());
    }
    if a.kind == Kind::Reference {
        m.insert("referenceTypes".into(), a.reference_types.clone().into());
    }
    if a.kind == Kind::Complex {
        m.insert("subAttributes".into(), attributes_json(&a.sub_attributes));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashSet;

    /// Every attribute list in the module: each schema's top level, COMMON, and every
    /// complex attribute's sub-attributes, each with a path for failure messages.
    fn all_lists() -> Vec<(String, &'static [Arc<Attribute>])> {
        let mut tops: Vec<(String, &'static [Arc<Attribute>])> = all_schemas()
            .into_iter()
            .map(|s| (s.id.to_string(), s.attributes.as_slice()))
            .collect();
        tops.push(("common".to_string(), COMMON.as_slice()));
        let mut out = Vec::new();
        for (path, list) in tops {
            for a in list {
                if !a.sub_attributes.is_empty() {
                    out.push((format!("{path}:{}", a.name), a.sub_attributes.as_slice()));
                }
            }
            out.push((path, list));
        }
        out
    }

    fn all_attributes() -> Vec<(String, &'static Attribute)> {
        all_lists()
            .into_iter()
            .flat_map(|(path, list)| {
                list.iter()
                    .map(move |a| (format!("{path}.{}", a.name), &**a))
            })
            .collect()
    }

    #[test]
    fn lookups_are_case_insensitive() {
        let user_name = USER.attribute("USERNAME").expect("userName");
        assert_eq!(user_name.name, "userName");
        let emails = USER.attribute("Emails").expect("emails");
        assert_eq!(emails.sub("VALUE").expect("value").name, "value");
        assert_eq!(emails.sub("Primary").expect("primary").kind, Kind::Boolean);
        assert!(USER.attribute("nosuch").is_none());
        assert!(emails.sub("nosuch").is_none());
        assert_eq!(
            GROUP
                .attribute("members")
                .and_then(|m| m.sub("$REF"))
                .map(|a| a.name.as_str()),
            Some("$ref")
        );
        assert_eq!(common_attribute("ID").map(|a| a.name.as_str()), Some("id"));
        assert_eq!(
            find_schema(&USER_URN.to_ascii_uppercase()).map(|s| s.name.as_str()),
            Some("User")
        );
        assert_eq!(
            find_schema(ENTERPRISE_USER_URN).map(|s| s.name.as_str()),
            Some("EnterpriseUser")
        );
        assert!(find_schema("urn:ietf:params:scim:schemas:core:2.0:Nope").is_none());
    }

    #[test]
    fn user_name_is_required_and_server_unique() {
        let a = USER.attribute("userName").expect("userName");
        assert!(a.required);
        assert!(!a.case_exact);
        assert_eq!(a.uniqueness, Uniqueness::Server);
        assert_eq!(a.kind, Kind::String);
        // Nothing else in the User is required.
        let required: Vec<_> = USER
            .attributes
            .iter()
            .filter(|a| a.required)
            .map(|a| &a.name)
            .collect();
        assert_eq!(required, ["userName"]);
    }

    #[test]
    fn password_is_write_only_and_never_returned() {
        let a = USER.attribute("password").expect("password");
        assert_eq!(a.mutability, Mutability::WriteOnly);
        assert_eq!(a.returned, Returned::Never);
        // It is the only such attribute.
        for (path, a) in all_attributes() {
            if a.name != "password" {
                assert_ne!(a.returned, Returned::Never, "{path}");
                assert_ne!(a.mutability, Mutability::WriteOnly, "{path}");
            }
        }
    }

    #[test]
    fn groups_is_read_only_throughout() {
        let groups = USER.attribute("groups").expect("groups");
        assert!(groups.multi_valued);
        assert_eq!(groups.mutability, Mutability::ReadOnly);
        for sub in &groups.sub_attributes {
            assert_eq!(sub.mutability, Mutability::ReadOnly, "groups.{}", sub.name);
        }
        assert_eq!(
            groups.sub("type").expect("type").canonical_values,
            ["direct", "indirect"]
        );
        assert_eq!(
            groups.sub("$ref").expect("$ref").reference_types,
            ["User", "Group"]
        );
    }

    #[test]
    fn user_attributes_in_rfc_order() {
        let names: Vec<_> = USER.attributes.iter().map(|a| &a.name).collect();
        assert_eq!(
            names,
            [
                "userName",
                "name",
                "displayName",
                "nickName",
                "profileUrl",
                "title",
                "userType",
                "preferredLanguage",
                "locale",
                "timezone",
                "active",
                "password",
                "emails",
                "phoneNumbers",
                "ims",
                "photos",
                "addresses",
                "groups",
                "entitlements",
                "roles",
                "x509Certificates",
            ]
        );
        let subs = |name: &str| -> Vec<&str> {
            USER.attribute(name)
                .map(|a| a.sub_attributes.iter().map(|s| s.name.as_str()).collect())
                .unwrap_or_default()
        };
        assert_eq!(
            subs("name"),
            [
                "formatted",
                "familyName",
                "givenName",
                "middleName",
                "honorificPrefix",
                "honorificSuffix"
            ]
        );
        assert_eq!(
            subs("addresses"),
            [
                "formatted",
                "streetAddress",
                "locality",
                "region",
                "postalCode",
                "country",
                "type",
                "primary"
            ]
        );
        for name in [
            "emails",
            "phoneNumbers",
            "ims",
            "photos",
            "entitlements",
            "roles",
            "x509Certificates",
        ] {
            assert_eq!(
                subs(name),
                ["value", "display", "type", "primary"],
                "{name}"
            );
        }
    }

    #[test]
    fn multi_valued_attributes_are_the_rfc_ones() {
        let multi: Vec<_> = USER
            .attributes
            .iter()
            .filter(|a| a.multi_valued)
            .map(|a| &a.name)
            .collect();
        assert_eq!(
            multi,
            [
                "emails",
                "phoneNumbers",
                "ims",
                "photos",
                "addresses",
                "groups",
                "entitlements",
                "roles",
                "x509Certificates"
            ]
        );
        // Sub-attributes are never multi-valued here.
        for (path, a) in all_attributes() {
            for sub in &a.sub_attributes {
                assert!(!sub.multi_valued, "{path}.{}", sub.name);
            }
        }
    }

    #[test]
    fn types_and_canonical_values_match_rfc() {
        let user = |a: &str, s: &str| USER.attribute(a).and_then(|a| a.sub(s)).expect(s);
        assert_eq!(
            user("emails", "type").canonical_values,
            ["work", "home", "other"]
        );
        assert_eq!(
            user("phoneNumbers", "type").canonical_values,
            ["work", "home", "mobile", "fax", "pager", "other"]
        );
        assert_eq!(
            user("ims", "type").canonical_values,
            ["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]
        );
        assert_eq!(
            user("photos", "type").canonical_values,
            ["photo", "thumbnail"]
        );
        assert_eq!(
            user("addresses", "type").canonical_values,
            ["work", "home", "other"]
        );
        assert!(user("roles", "type").canonical_values.is_empty());
        assert_eq!(user("photos", "value").kind, Kind::Reference);
        assert_eq!(user("photos", "value").reference_types, ["external"]);
        assert_eq!(user("x509Certificates", "value").kind, Kind::Binary);
        assert!(
            USER.attribute("addresses")
                .and_then(|a| a.sub("value"))
                .is_none()
        );
        let profile = USER.attribute("profileUrl").expect("profileUrl");
        assert_eq!(
            (profile.kind, profile.reference_types.as_slice()),
            (Kind::Reference, &["external".to_string()][..])
        );
        assert_eq!(
            USER.attribute("active").map(|a| a.kind),
            Some(Kind::Boolean)
        );

        let manager = ENTERPRISE_USER.attribute("manager").expect("manager");
        assert_eq!(manager.kind, Kind::Complex);
        assert!(!manager.multi_valued);
        assert_eq!(manager.sub("$ref").expect("$ref").reference_types, ["User"]);
        assert_eq!(
            manager.sub("displayName").expect("displayName").mutability,
            Mutability::ReadOnly
        );

        let display_name = GROUP.attribute("displayName").expect("displayName");
        assert!(display_name.required);
        assert_eq!(display_name.uniqueness, Uniqueness::Server);
        let members = GROUP.attribute("members").expect("members");
        assert!(members.multi_valued);
        assert_eq!(members.mutability, Mutability::ReadWrite);
        for name in ["value", "$ref", "type"] {
            assert_eq!(
                members.sub(name).expect(name).mutability,
                Mutability::Immutable,
                "members.{name}"
            );
        }
        assert_eq!(
            members.sub("display").expect("display").mutability,
            Mutability::ReadOnly
        );
        assert_eq!(
            members.sub("type").expect("type").canonical_values,
            ["User", "Group"]
        );
    }

    #[test]
    fn common_attributes() {
        let id = common_attribute("id").expect("id");
        assert!(id.case_exact);
        assert_eq!(id.mutability, Mutability::ReadOnly);
        assert_eq!(id.returned, Returned::Always);
        assert_eq!(id.uniqueness, Uniqueness::Server);
        let external = common_attribute("externalId").expect("externalId");
        assert!(external.case_exact);
        assert_eq!(external.mutability, Mutability::ReadWrite);
        let meta = common_attribute("meta").expect("meta");
        assert_eq!(meta.mutability, Mutability::ReadOnly);
        let names: Vec<_> = meta.sub_attributes.iter().map(|a| &a.name).collect();
        assert_eq!(
            names,
            [
                "resourceType",
                "created",
                "lastModified",
                "location",
                "version"
            ]
        );
        for sub in &meta.sub_attributes {
            assert_eq!(sub.mutability, Mutability::ReadOnly, "meta.{}", sub.name);
        }
        assert_eq!(meta.sub("created").map(|a| a.kind), Some(Kind::DateTime));
        assert_eq!(
            meta.sub("lastModified").map(|a| a.kind),
            Some(Kind::DateTime)
        );
        assert_eq!(
            meta.sub("location").map(|a| a.reference_types.as_slice()),
            Some(&["uri".to_string()][..])
        );
        // No schema redefines a common attribute.
        for schema in all_schemas() {
            for a in COMMON.iter() {
                assert!(
                    schema.attribute(&a.name).is_none(),
                    "{} in {}",
                    a.name,
                    schema.id
                );
            }
        }
    }

    #[test]
    fn complex_iff_sub_attributes_and_no_nesting() {
        for (path, a) in all_attributes() {
            assert_eq!(
                a.kind == Kind::Complex,
                !a.sub_attributes.is_empty(),
                "{path}: complex attributes, and only they, have sub-attributes"
            );
            for sub in &a.sub_attributes {
                assert_ne!(
                    sub.kind,
                    Kind::Complex,
                    "{path}.{}: nested complex",
                    sub.name
                );
            }
        }
    }

    #[test]
    fn reference_types_only_on_references() {
        for (path, a) in all_attributes() {
            assert_eq!(
                a.kind == Kind::Reference,
                !a.reference_types.is_empty(),
                "{path}"
            );
            if !a.canonical_values.is_empty() {
                assert_eq!(a.kind, Kind::String, "{path}");
            }
        }
    }

    #[test]
    fn no_duplicate_names_at_any_level() {
        for (path, list) in all_lists() {
            let mut seen = HashSet::new();
            for a in list {
                assert!(
                    seen.insert(a.name.to_ascii_lowercase()),
                    "{path}: duplicate attribute {}",
                    a.name
                );
            }
        }
        let mut ids = HashSet::new();
        for s in all_schemas() {
            assert!(
                ids.insert(s.id.to_ascii_lowercase()),
                "duplicate schema {}",
                s.id
            );
        }
    }

    #[test]
    fn every_attribute_is_described() {
        for (path, a) in all_attributes() {
            assert!(!a.description.trim().is_empty(), "{path}");
            assert_eq!(a.description.trim(), a.description, "{path}");
            // Catches a missing space at a `\` line continuation in the source.
            assert!(!a.description.contains("  ."), "{path}");
            assert!(!a.description.contains('\n'), "{path}");
        }
        for s in all_schemas() {
            assert!(!s.name.is_empty() && !s.description.is_empty(), "{}", s.id);
        }
    }

    #[test]
    fn user_schema_json_shape() {
        let loc = "https://example.com/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User";
        let v = schema_json(&USER, loc);
        assert_eq!(v["schemas"], json!([SCHEMA_URN]));
        assert_eq!(v["id"], USER_URN);
        assert_eq!(v["name"], "User");
        assert_eq!(v["description"], "User Account");
        assert_eq!(
            v["meta"],
            json!({"resourceType": "Schema", "location": loc})
        );
        let keys: Vec<_> = v.as_object().expect("object").keys().cloned().collect();
        assert_eq!(
            keys,
            ["schemas", "id", "name", "description", "attributes", "meta"]
        );

        let attrs = v["attributes"].as_array().expect("attributes");
        assert_eq!(attrs.len(), USER.attributes.len());
        let find = |list: &[Value], name: &str| -> Value {
            list.iter()
                .find(|a| a["name"] == name)
                .cloned()
                .unwrap_or(Value::Null)
        };
        assert!(
            find(attrs, "id").is_null(),
            "common attributes are not listed"
        );
        assert!(find(attrs, "meta").is_null());

        assert_eq!(
            find(attrs, "userName"),
            json!({
                "name": "userName",
                "type": "string",
                "multiValued": false,
                "description": "Unique identifier for the User, typically used by the user to \
                    directly authenticate to the service provider. Each User MUST include a \
                    non-empty userName value.  This identifier MUST be unique across the service \
                    provider's entire set of Users. REQUIRED.",
                "required": true,
                "caseExact": false,
                "mutability": "readWrite",
                "returned": "default",
                "uniqueness": "server"
            })
        );

        let password = find(attrs, "password");
        assert_eq!(password["mutability"], "writeOnly");
        assert_eq!(password["returned"], "never");

        let profile = find(attrs, "profileUrl");
        assert_eq!(profile["type"], "reference");
        assert_eq!(profile["referenceTypes"], json!(["external"]));
        assert!(profile.get("subAttributes").is_none());
        assert!(profile.get("canonicalValues").is_none());

        let emails = find(attrs, "emails");
        assert_eq!(emails["type"], "complex");
        assert_eq!(emails["multiValued"], true);
        assert!(emails.get("referenceTypes").is_none());
        let subs = emails["subAttributes"].as_array().expect("subAttributes");
        assert_eq!(
            find(subs, "type"),
            json!({
                "name": "type",
                "type": "string",
                "multiValued": false,
                "description": "A label indicating the attribute's function, e.g., 'work' or 'home'.",
                "required": false,
                "caseExact": false,
                "mutability": "readWrite",
                "returned": "default",
                "uniqueness": "none",
                "canonicalValues": ["work", "home", "other"]
            })
        );
        assert_eq!(find(subs, "primary")["type"], "boolean");
        assert!(find(subs, "value").get("canonicalValues").is_none());

        let groups = find(attrs, "groups");
        assert_eq!(groups["mutability"], "readOnly");
        let subs = groups["subAttributes"].as_array().expect("subAttributes");
        assert_eq!(
            find(subs, "$ref")["referenceTypes"],
            json!(["User", "Group"])
        );

        let certs = find(attrs, "x509Certificates");
        let subs = certs["subAttributes"].as_array().expect("subAttributes");
        assert_eq!(find(subs, "value")["type"], "binary");
        assert!(find(subs, "type").get("canonicalValues").is_none());
    }

    #[test]
    fn schema_json_renders_every_schema_completely() {
        fn check(list: &[Arc<Attribute>], json: &Value) {
            let arr = json.as_array().expect("array");
            assert_eq!(arr.len(), list.len());
            for (a, j) in list.iter().zip(arr) {
                assert_eq!(j["name"], a.name);
                assert_eq!(j["type"], a.kind.as_str());
                assert_eq!(j["description"], a.description);
                for key in ["multiValued", "required", "caseExact"] {
                    assert!(j[key].is_boolean(), "{}.{key}", a.name);
                }
                for key in ["mutability", "returned", "uniqueness"] {
                    assert!(j[key].is_string(), "{}.{key}", a.name);
                }
                if a.kind == Kind::Complex {
                    check(&a.sub_attributes, &j["subAttributes"]);
                }
            }
        }
        for s in all_schemas() {
            let v = schema_json(s, "/Schemas/x");
            assert_eq!(v["id"], s.id);
            check(&s.attributes, &v["attributes"]);
        }
        let v = schema_json(&ENTERPRISE_USER, "/Schemas/x");
        assert_eq!(v["name"], "EnterpriseUser");
        assert_eq!(v["description"], "Enterprise User");
        let manager = &v["attributes"][5];
        assert_eq!(manager["name"], "manager");
        assert_eq!(
            manager["subAttributes"][1]["referenceTypes"],
            json!(["User"])
        );
        let v = schema_json(&GROUP, "/Schemas/x");
        assert_eq!(v["attributes"][0]["uniqueness"], "server");
        assert_eq!(v["attributes"][0]["required"], true);
    }

    #[test]
    fn enum_strings() {
        let kinds = [
            (Kind::String, "string"),
            (Kind::Boolean, "boolean"),
            (Kind::Decimal, "decimal"),
            (Kind::Integer, "integer"),
            (Kind::DateTime, "dateTime"),
            (Kind::Binary, "binary"),
            (Kind::Reference, "reference"),
            (Kind::Complex, "complex"),
        ];
        for (k, s) in kinds {
            assert_eq!(k.as_str(), s);
        }
        assert_eq!(Mutability::ReadOnly.as_str(), "readOnly");
        assert_eq!(Mutability::ReadWrite.as_str(), "readWrite");
        assert_eq!(Mutability::Immutable.as_str(), "immutable");
        assert_eq!(Mutability::WriteOnly.as_str(), "writeOnly");
        assert_eq!(Returned::Always.as_str(), "always");
        assert_eq!(Returned::Never.as_str(), "never");
        assert_eq!(Returned::Default.as_str(), "default");
        assert_eq!(Returned::Request.as_str(), "request");
        assert_eq!(Uniqueness::None.as_str(), "none");
        assert_eq!(Uniqueness::Server.as_str(), "server");
        assert_eq!(Uniqueness::Global.as_str(), "global");
    }
}
