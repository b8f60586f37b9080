//! The marketplace (SPEC §4.7 v2): the published public offerings of every other org, which a
//! consumer may ask access to ([`crate::access_requests`]).
//!
//! Contract: any member of an org workspace may list it (the personal workspace has no org to
//! ask for access with: 403 `organization_required`); the caller's own offerings, private and
//! unpublished ones are never listed, and their ids answer 404 to an access request.

use crate::paging::{Page, PageRequest, page_of};
use crate::{Ctx, Deps, ServiceError};
use inventiv_domain::{Action, Activation, OfferingId, OrgId};
use inventiv_persistence::repo::marketplace::{self, ListingRecord};

/// A published public offering of another org.
#[derive(Debug, Clone)]
pub struct Listing {
    pub id: OfferingId,
    pub provider_organization_id: OrgId,
    pub provider_slug: String,
    pub provider_name: String,
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub default_price_input_micros_per_1k: i64,
    pub default_price_output_micros_per_1k: i64,
    /// The offering's own two approvals (a share of it also needs the share's).
    pub activation: Activation,
    /// Its org model's approvals (None: a public model, which needs none).
    pub model_activation: Option<Activation>,
}

impl Listing {
    /// What clients will put in `model` once a share is active: `<provider_slug>/<code>`.
    pub fn address(&self) -> String {
        format!("{}/{}", self.provider_slug, self.code)
    }

    /// The offering is published (always, here), both its approvals are on, and so are its
    /// org model's (SPEC §1 v2: an unapproved org model serves no traffic).
    pub fn operational(&self) -> bool {
        self.activation.operational(false)
            && self.model_activation.is_none_or(|m| m.operational(false))
    }
}

impl From<ListingRecord> for Listing {
    fn from(r: ListingRecord) -> Self {
        Listing {
            id: r.id,
            provider_organization_id: r.provider_organization_id,
            provider_slug: r.provider_slug,
            provider_name: r.provider_name,
            code: r.code,
            name: r.name,
            description: r.description,
            default_price_input_micros_per_1k: r.default_price_input_micros_per_1k,
            default_price_output_micros_per_1k: r.default_price_output_micros_per_1k,
            activation: r.activation,
            model_activation: r.model_activation,
        }
    }
}

/// `GET /marketplace/offerings`: other orgs' published public offerings, by id.
pub async fn list(
    deps: &Deps,
    ctx: &Ctx,
    page: &PageRequest,
) -> Result<Page<Listing>, ServiceError> {
    let (org, _) = ctx.current_org(Action::ViewMarketplace)?;
    let (limit, after) = page.parse::<OfferingId>()?;
    let rows = marketplace::list(&deps.db, org, after, limit + 1)
        .await?
        .into_iter()
        .map(Listing::from)
        .collect();
    Ok(page_of(rows, limit, |l| l.id))
}
