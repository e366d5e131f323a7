//! Which events reach a handler ([`Route`]), the event sets declared known ([`KnownSet`]), and
//! the handlers of one route grouped by the type they decode once ([`Group`]).

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

use super::call::Call;
use super::error::HandlerError;
use crate::envelope::{DecodeError, RawEnvelope, category_of};
use crate::payload::{EventInfo, EventSet};
use crate::transport::BoxFuture;

pub(super) type HandlerFn<T> =
    Arc<dyn Fn(T) -> BoxFuture<'static, Result<(), HandlerError>> + Send + Sync>;

/// An event set declared with [`Handlers::knowing`](super::Handlers::knowing) or
/// [`Handlers::on_category`](super::Handlers::on_category).
#[derive(Clone, Copy)]
pub(super) struct KnownSet {
    pub(super) id: TypeId,
    pub(super) name: &'static str,
    pub(super) knows_type: fn(&str) -> bool,
    pub(super) info: fn(&str, u32) -> Option<&'static EventInfo>,
}

impl KnownSet {
    pub(super) fn of<E: EventSet>() -> Self {
        Self {
            id: TypeId::of::<E>(),
            name: std::any::type_name::<E>(),
            knows_type: E::knows_type,
            info: E::info,
        }
    }
}

#[derive(Clone, Copy)]
pub(super) enum Route {
    /// One version of one type, decoded as a payload.
    Type {
        event_type: &'static str,
        version: u32,
        category: &'static str,
    },
    /// The events of a category that an event set declares, decoded as the set.
    Category {
        category: &'static str,
        set: KnownSet,
    },
    /// Every event of a category, undecoded ([`Handlers::on_raw`](super::Handlers::on_raw)).
    Raw { category: &'static str },
}

impl Route {
    pub(super) fn matches(&self, raw: &RawEnvelope) -> bool {
        match self {
            Route::Type {
                event_type,
                version,
                ..
            } => *event_type == raw.event_type && *version == raw.version,
            Route::Category { category, set } => {
                category_of(&raw.event_type) == Some(*category)
                    && (set.info)(&raw.event_type, raw.version).is_some()
            }
            Route::Raw { category } => category_of(&raw.event_type) == Some(*category),
        }
    }

    pub(super) fn category(&self) -> &'static str {
        match self {
            Route::Type { category, .. }
            | Route::Category { category, .. }
            | Route::Raw { category } => category,
        }
    }
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Type {
                event_type,
                version,
                ..
            } => write!(f, "{event_type} v{version}"),
            Route::Category { category, set } => write!(f, "category {category} as {}", set.name),
            Route::Raw { category } => write!(f, "category {category} raw"),
        }
    }
}

/// The handlers of one route that take the same decoded type `T`.
pub(super) struct Group<T> {
    pub(super) route: Route,
    /// Which registrations share this group: the payload or set type, plus the category.
    pub(super) key: (TypeId, Option<&'static str>),
    pub(super) decode: fn(&RawEnvelope) -> Result<T, DecodeError>,
    /// Another copy of a decoded value for the next handler: a clone, or a second decode for
    /// types that are not `Clone`.
    pub(super) again: fn(&T, &RawEnvelope) -> Result<T, DecodeError>,
    pub(super) handlers: Vec<HandlerFn<T>>,
}

pub(super) trait ErasedGroup: Send + Sync {
    fn route(&self) -> &Route;
    fn key(&self) -> (TypeId, Option<&'static str>);
    fn handler_count(&self) -> usize;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Decodes `raw` once and binds it to every handler of the group.
    fn prepare(&self, raw: &RawEnvelope, calls: &mut Vec<Call>) -> Result<(), DecodeError>;
}

impl<T: Send + 'static> ErasedGroup for Group<T> {
    fn route(&self) -> &Route {
        &self.route
    }

    fn key(&self) -> (TypeId, Option<&'static str>) {
        self.key
    }

    fn handler_count(&self) -> usize {
        self.handlers.len()
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn prepare(&self, raw: &RawEnvelope, calls: &mut Vec<Call>) -> Result<(), DecodeError> {
        let Some((last, others)) = self.handlers.split_last() else {
            return Ok(());
        };
        let value = (self.decode)(raw)?;
        for handler in others {
            let copy = (self.again)(&value, raw)?;
            let handler = handler.clone();
            calls.push(Box::new(move || handler(copy)));
        }
        let last = last.clone();
        calls.push(Box::new(move || last(value)));
        Ok(())
    }
}

pub(super) fn clone_value<T: Clone>(value: &T, _: &RawEnvelope) -> Result<T, DecodeError> {
    Ok(value.clone())
}

pub(super) fn decode_again<E: EventSet>(_: &E, raw: &RawEnvelope) -> Result<E, DecodeError> {
    E::decode(raw)
}
