// This file is @generated from tests/fixtures/good/shop.toml by the codegen snapshot test.
// Do not edit: run `EXPECTORATE=overwrite cargo test -p domain-events-schema`.

// The generator's own formatting (prettyplease) is the snapshot; rustfmt leaves it alone.
#![cfg_attr(rustfmt, rustfmt::skip)]

/// The person who ordered.
#[derive(
    ::core::clone::Clone,
    ::core::cmp::PartialEq,
    ::domain_events::__private::serde::Serialize
)]
#[serde(crate = "::domain_events::__private::serde")]
pub struct Customer {
    /// `customerId`
    #[serde(rename = "customerId")]
    pub customer_id: ::std::string::String,
    /// `email`
    #[serde(rename = "email")]
    pub email: ::domain_events::Email,
    /// `loyalty`
    #[serde(
        rename = "loyalty",
        default,
        skip_serializing_if = "::core::option::Option::is_none"
    )]
    pub loyalty: ::core::option::Option<Tier>,
}
#[allow(deprecated)]
const _: () = {
    #[automatically_derived]
    impl ::core::fmt::Debug for Customer {
        fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
            f.debug_struct("Customer")
                .field("customer_id", &self.customer_id)
                .field("email", &::domain_events::__private::Redacted)
                .field("loyalty", &self.loyalty)
                .finish()
        }
    }
    #[automatically_derived]
    impl<'de> ::domain_events::__private::serde::Deserialize<'de> for Customer {
        fn deserialize<D: ::domain_events::__private::serde::Deserializer<'de>>(
            d: D,
        ) -> ::core::result::Result<Self, D::Error> {
            #[derive(::domain_events::__private::serde::Deserialize)]
            #[serde(crate = "::domain_events::__private::serde")]
            struct __Raw {
                #[serde(rename = "customerId")]
                customer_id: ::std::string::String,
                #[serde(rename = "email")]
                email: ::domain_events::Email,
                #[serde(rename = "loyalty", default)]
                loyalty: ::core::option::Option<Tier>,
            }
            let __raw = <__Raw as ::domain_events::__private::serde::Deserialize>::deserialize(
                d,
            )?;
            ::core::result::Result::Ok(Self {
                customer_id: __raw.customer_id,
                email: __raw.email,
                loyalty: __raw.loyalty,
            })
        }
    }
    #[automatically_derived]
    impl ::domain_events::Validate for Customer {
        #[allow(unused_variables)]
        fn validate_into(
            &self,
            __v: &mut ::domain_events::__private::Validator,
            __path: &::domain_events::__private::Path<'_>,
        ) {
            ::domain_events::__private::Check::check(
                &self.customer_id,
                __v,
                &__path.field("customerId"),
                {
                    static __C: ::domain_events::__private::Constraints = ::domain_events::__private::Constraints {
                        min: ::core::option::Option::None,
                        max: ::core::option::Option::None,
                        min_length: ::core::option::Option::Some(1u64),
                        max_length: ::core::option::Option::None,
                        pattern: ::core::option::Option::None,
                        min_items: ::core::option::Option::None,
                        max_items: ::core::option::Option::None,
                    };
                    &__C
                },
            );
        }
    }
    #[automatically_derived]
    impl ::domain_events::__private::Check for Customer {
        fn check(
            &self,
            v: &mut ::domain_events::__private::Validator,
            path: &::domain_events::__private::Path<'_>,
            _: &::domain_events::__private::Constraints,
        ) {
            ::domain_events::Validate::validate_into(self, v, path);
        }
    }
    #[automatically_derived]
    impl ::domain_events::__private::schemars::JsonSchema for Customer {
        fn schema_name() -> ::std::borrow::Cow<'static, str> {
            ::std::borrow::Cow::Borrowed("Customer")
        }
        fn json_schema(
            _: &mut ::domain_events::__private::schemars::SchemaGenerator,
        ) -> ::domain_events::__private::schemars::Schema {
            ::domain_events::__private::schema_from_json(
                "Customer",
                "{\"description\":\"The person who ordered.\",\"properties\":{\"customerId\":{\"minLength\":1,\"type\":\"string\"},\"email\":{\"format\":\"email\",\"type\":\"string\"},\"loyalty\":{\"enum\":[\"bronze\",\"silver\",\"gold\"],\"type\":\"string\"}},\"required\":[\"customerId\",\"email\"],\"title\":\"Customer\",\"type\":\"object\"}",
            )
        }
    }
};
/// The `OrderLine` object of the `shop` schema.
#[derive(
    ::core::clone::Clone,
    ::core::cmp::PartialEq,
    ::domain_events::__private::serde::Serialize
)]
#[serde(crate = "::domain_events::__private::serde")]
pub struct OrderLine {
    /// `sku`
    #[serde(rename = "sku")]
    pub sku: ::std::string::String,
    /// `quantity`
    #[serde(rename = "quantity")]
    pub quantity: u64,
    /// `unitCents`
    #[serde(rename = "unitCents")]
    pub unit_cents: u64,
}
#[allow(deprecated)]
const _: () = {
    #[automatically_derived]
    impl ::core::fmt::Debug for OrderLine {
        fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
            f.debug_struct("OrderLine")
                .field("sku", &self.sku)
                .field("quantity", &self.quantity)
                .field("unit_cents", &self.unit_cents)
                .finish()
        }
    }
    #[automatically_derived]
    impl<'de> ::domain_events::__private::serde::Deserialize<'de> for OrderLine {
        fn deserialize<D: ::domain_events::__private::serde::Deserializer<'de>>(
            d: D,
        ) -> ::core::result::Result<Self, D::Error> {
            #[derive(::domain_events::__private::serde::Deserialize)]
            #[serde(crate = "::domain_events::__private::serde")]
            struct __Raw {
                #[serde(rename = "sku")]
                sku: ::std::string::String,
                #[serde(rename = "quantity")]
                quantity: u64,
                #[serde(rename = "unitCents")]
                unit_cents: u64,
            }
            let __raw = <__Raw as ::domain_events::__private::serde::Deserialize>::deserialize(
                d,
            )?;
            ::core::result::Result::Ok(Self {
                sku: __raw.sku,
                quantity: __raw.quantity,
                unit_cents: __raw.unit_cents,
            })
        }
    }
    #[automatically_derived]
    impl ::domain_events::Validate for OrderLine {
        #[allow(unused_variables)]
        fn validate_into(
            &self,
            __v: &mut ::domain_events::__private::Validator,
            __path: &::domain_events::__private::Path<'_>,
        ) {
            ::domain_events::__private::Check::check(
                &self.quantity,
                __v,
                &__path.field("quantity"),
                {
                    static __C: ::domain_events::__private::Constraints = ::domain_events::__private::Constraints {
                        min: ::core::option::Option::Some(
                            ::domain_events::__private::Bound::Int(1i128),
                        ),
                        max: ::core::option::Option::None,
                        min_length: ::core::option::Option::None,
                        max_length: ::core::option::Option::None,
                        pattern: ::core::option::Option::None,
                        min_items: ::core::option::Option::None,
                        max_items: ::core::option::Option::None,
                    };
                    &__C
                },
            );
        }
    }
    #[automatically_derived]
    impl ::domain_events::__private::Check for OrderLine {
        fn check(
            &self,
            v: &mut ::domain_events::__private::Validator,
            path: &::domain_events::__private::Path<'_>,
            _: &::domain_events::__private::Constraints,
        ) {
            ::domain_events::Validate::validate_into(self, v, path);
        }
    }
    #[automatically_derived]
    impl ::domain_events::__private::schemars::JsonSchema for OrderLine {
        fn schema_name() -> ::std::borrow::Cow<'static, str> {
            ::std::borrow::Cow::Borrowed("OrderLine")
        }
        fn json_schema(
            _: &mut ::domain_events::__private::schemars::SchemaGenerator,
        ) -> ::domain_events::__private::schemars::Schema {
            ::domain_events::__private::schema_from_json(
                "OrderLine",
                "{\"properties\":{\"quantity\":{\"minimum\":1,\"type\":\"integer\"},\"sku\":{\"type\":\"string\"},\"unitCents\":{\"minimum\":0,\"type\":\"integer\"}},\"required\":[\"sku\",\"quantity\",\"unitCents\"],\"title\":\"OrderLine\",\"type\":\"object\"}",
            )
        }
    }
};
/// Why an order was cancelled.
#[derive(
    ::core::clone::Clone,
    ::core::marker::Copy,
    ::core::cmp::PartialEq,
    ::core::cmp::Eq,
    ::core::hash::Hash,
    ::core::cmp::PartialOrd,
    ::core::cmp::Ord,
    ::core::fmt::Debug,
    ::domain_events::__private::serde::Serialize,
    ::domain_events::__private::serde::Deserialize
)]
#[serde(crate = "::domain_events::__private::serde")]
pub enum Reason {
    /// `customer_request`
    #[serde(rename = "customer_request")]
    CustomerRequest,
    /// `out_of_stock`
    #[serde(rename = "out_of_stock")]
    OutOfStock,
    /// `fraud`
    #[serde(rename = "fraud")]
    Fraud,
}
impl Reason {
    /// Every value, in schema order.
    pub const ALL: &'static [Self] = &[
        Self::CustomerRequest,
        Self::OutOfStock,
        Self::Fraud,
    ];
    /// The value as it appears on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CustomerRequest => "customer_request",
            Self::OutOfStock => "out_of_stock",
            Self::Fraud => "fraud",
        }
    }
}
const _: () = {
    #[automatically_derived]
    impl ::core::fmt::Display for Reason {
        fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
            f.write_str(self.as_str())
        }
    }
    #[automatically_derived]
    impl ::core::str::FromStr for Reason {
        type Err = ::domain_events::UnknownValue;
        fn from_str(s: &str) -> ::core::result::Result<Self, Self::Err> {
            match s {
                "customer_request" => ::core::result::Result::Ok(Self::CustomerRequest),
                "out_of_stock" => ::core::result::Result::Ok(Self::OutOfStock),
                "fraud" => ::core::result::Result::Ok(Self::Fraud),
                other => {
                    ::core::result::Result::Err(
                        ::domain_events::UnknownValue::new(
                            other,
                            "one of `customer_request`, `out_of_stock`, `fraud`",
                        ),
                    )
                }
            }
        }
    }
    #[automatically_derived]
    impl ::domain_events::__private::KeyPart for Reason {
        fn write_key(&self, out: &mut ::std::string::String) {
            out.push_str(self.as_str());
        }
    }
    #[automatically_derived]
    impl ::domain_events::__private::Check for Reason {}
    #[automatically_derived]
    impl ::domain_events::__private::schemars::JsonSchema for Reason {
        fn schema_name() -> ::std::borrow::Cow<'static, str> {
            ::std::borrow::Cow::Borrowed("Reason")
        }
        fn json_schema(
            _: &mut ::domain_events::__private::schemars::SchemaGenerator,
        ) -> ::domain_events::__private::schemars::Schema {
            ::domain_events::__private::schema_from_json(
                "Reason",
                "{\"description\":\"Why an order was cancelled.\",\"enum\":[\"customer_request\",\"out_of_stock\",\"fraud\"],\"type\":\"string\"}",
            )
        }
    }
};
/// The allowed values of `ShopOrderPlacedChannel` (`shop` schema).
#[derive(
    ::core::clone::Clone,
    ::core::marker::Copy,
    ::core::cmp::PartialEq,
    ::core::cmp::Eq,
    ::core::hash::Hash,
    ::core::cmp::PartialOrd,
    ::core::cmp::Ord,
    ::core::fmt::Debug,
    ::domain_events::__private::serde::Serialize,
    ::domain_events::__private::serde::Deserialize
)]
#[serde(crate = "::domain_events::__private::serde")]
pub enum ShopOrderPlacedChannel {
    /// `web`
    #[serde(rename = "web")]
    Web,
    /// `mobile-app`
    #[serde(rename = "mobile-app")]
    MobileApp,
    /// `2fa`
    #[serde(rename = "2fa")]
    V2fa,
}
impl ShopOrderPlacedChannel {
    /// Every value, in schema order.
    pub const ALL: &'static [Self] = &[Self::Web, Self::MobileApp, Self::V2fa];
    /// The value as it appears on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::MobileApp => "mobile-app",
            Self::V2fa => "2fa",
        }
    }
}
const _: () = {
    #[automatically_derived]
    impl ::core::fmt::Display for ShopOrderPlacedChannel {
        fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
            f.write_str(self.as_str())
        }
    }
    #[automatically_derived]
    impl ::core::str::FromStr for ShopOrderPlacedChannel {
        type Err = ::domain_events::UnknownValue;
        fn from_str(s: &str) -> ::core::result::Result<Self, Self::Err> {
            match s {
                "web" => ::core::result::Result::Ok(Self::Web),
                "mobile-app" => ::core::result::Result::Ok(Self::MobileApp),
                "2fa" => ::core::result::Result::Ok(Self::V2fa),
                other => {
                    ::core::result::Result::Err(
                        ::domain_events::UnknownValue::new(
                            other,
                            "one of `web`, `mobile-app`, `2fa`",
                        ),
                    )
                }
            }
        }
    }
    #[automatically_derived]
    impl ::domain_events::__private::KeyPart for ShopOrderPlacedChannel {
        fn write_key(&self, out: &mut ::std::string::String) {
            out.push_str(self.as_str());
        }
    }
    #[automatically_derived]
    impl ::domain_events::__private::Check for ShopOrderPlacedChannel {}
    #[automatically_derived]
    impl ::domain_events::__private::schemars::JsonSchema for ShopOrderPlacedChannel {
        fn schema_name() -> ::std::borrow::Cow<'static, str> {
            ::std::borrow::Cow::Borrowed("ShopOrderPlacedChannel")
        }
        fn json_schema(
            _: &mut ::domain_events::__private::schemars::SchemaGenerator,
        ) -> ::domain_events::__private::schemars::Schema {
            ::domain_events::__private::schema_from_json(
                "ShopOrderPlacedChannel",
                "{\"enum\":[\"web\",\"mobile-app\",\"2fa\"],\"type\":\"string\"}",
            )
        }
    }
};
/// The allowed values of `Tier` (`shop` schema).
#[derive(
    ::core::clone::Clone,
    ::core::marker::Copy,
    ::core::cmp::PartialEq,
    ::core::cmp::Eq,
    ::core::hash::Hash,
    ::core::cmp::PartialOrd,
    ::core::cmp::Ord,
    ::core::fmt::Debug,
    ::domain_events::__private::serde::Serialize,
    ::domain_events::__private::serde::Deserialize
)]
#[serde(crate = "::domain_events::__private::serde")]
pub enum Tier {
    /// `bronze`
    #[serde(rename = "bronze")]
    Bronze,
    /// `silver`
    #[serde(rename = "silver")]
    Silver,
    /// `gold`
    #[serde(rename = "gold")]
    Gold,
}
impl Tier {
    /// Every value, in schema order.
    pub const ALL: &'static [Self] = &[Self::Bronze, Self::Silver, Self::Gold];
    /// The value as it appears on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Bronze => "bronze",
            Self::Silver => "silver",
            Self::Gold => "gold",
        }
    }
}
const _: () = {
    #[automatically_derived]
    impl ::core::fmt::Display for Tier {
        fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
            f.write_str(self.as_str())
        }
    }
    #[automatically_derived]
    impl ::core::str::FromStr for Tier {
        type Err = ::domain_events::UnknownValue;
        fn from_str(s: &str) -> ::core::result::Result<Self, Self::Err> {
            match s {
                "bronze" => ::core::result::Result::Ok(Self::Bronze),
                "silver" => ::core::result::Result::Ok(Self::Silver),
                "gold" => ::core::result::Result::Ok(Self::Gold),
                other => {
                    ::core::result::Result::Err(
                        ::domain_events::UnknownValue::new(
                            other,
                            "one of `bronze`, `silver`, `gold`",
                        ),
                    )
                }
            }
        }
    }
    #[automatically_derived]
    impl ::domain_events::__private::KeyPart for Tier {
        fn write_key(&self, out: &mut ::std::string::String) {
            out.push_str(self.as_str());
        }
    }
    #[automatically_derived]
    impl ::domain_events::__private::Check for Tier {}
    #[automatically_derived]
    impl ::domain_events::__private::schemars::JsonSchema for Tier {
        fn schema_name() -> ::std::borrow::Cow<'static, str> {
            ::std::borrow::Cow::Borrowed("Tier")
        }
        fn json_schema(
            _: &mut ::domain_events::__private::schemars::SchemaGenerator,
        ) -> ::domain_events::__private::schemars::Schema {
            ::domain_events::__private::schema_from_json(
                "Tier",
                "{\"enum\":[\"bronze\",\"silver\",\"gold\"],\"type\":\"string\"}",
            )
        }
    }
};
/// Version 1 had no channel.
#[derive(
    ::core::clone::Clone,
    ::core::cmp::PartialEq,
    ::domain_events::__private::serde::Serialize
)]
#[serde(crate = "::domain_events::__private::serde")]
pub struct ShopOrderPlacedV1Payload {
    /// `orderId`
    #[serde(rename = "orderId")]
    pub order_id: ::std::string::String,
    /// `totalCents`
    #[serde(rename = "totalCents")]
    pub total_cents: u64,
}
#[allow(deprecated)]
const _: () = {
    #[automatically_derived]
    impl ::core::fmt::Debug for ShopOrderPlacedV1Payload {
        fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
            f.debug_struct("ShopOrderPlacedV1Payload")
                .field("order_id", &self.order_id)
                .field("total_cents", &self.total_cents)
                .finish()
        }
    }
    #[automatically_derived]
    impl<'de> ::domain_events::__private::serde::Deserialize<'de>
    for ShopOrderPlacedV1Payload {
        fn deserialize<D: ::domain_events::__private::serde::Deserializer<'de>>(
            d: D,
        ) -> ::core::result::Result<Self, D::Error> {
            #[derive(::domain_events::__private::serde::Deserialize)]
            #[serde(crate = "::domain_events::__private::serde")]
            struct __Raw {
                #[serde(rename = "orderId")]
                order_id: ::std::string::String,
                #[serde(rename = "totalCents")]
                total_cents: u64,
            }
            let __raw = <__Raw as ::domain_events::__private::serde::Deserialize>::deserialize(
                d,
            )?;
            ::domain_events::__private::checked::<
                D,
                Self,
            >(Self {
                order_id: __raw.order_id,
                total_cents: __raw.total_cents,
            })
        }
    }
    #[automatically_derived]
    impl ::domain_events::Validate for ShopOrderPlacedV1Payload {
        #[allow(unused_variables)]
        fn validate_into(
            &self,
            __v: &mut ::domain_events::__private::Validator,
            __path: &::domain_events::__private::Path<'_>,
        ) {
            ::domain_events::__private::Check::check(
                &self.order_id,
                __v,
                &__path.field("orderId"),
                {
                    static __C: ::domain_events::__private::Constraints = ::domain_events::__private::Constraints {
                        min: ::core::option::Option::None,
                        max: ::core::option::Option::None,
                        min_length: ::core::option::Option::Some(1u64),
                        max_length: ::core::option::Option::None,
                        pattern: ::core::option::Option::None,
                        min_items: ::core::option::Option::None,
                        max_items: ::core::option::Option::None,
                    };
                    &__C
                },
            );
        }
    }
    #[automatically_derived]
    impl ::domain_events::__private::Check for ShopOrderPlacedV1Payload {
        fn check(
            &self,
            v: &mut ::domain_events::__private::Validator,
            path: &::domain_events::__private::Path<'_>,
            _: &::domain_events::__private::Constraints,
        ) {
            ::domain_events::Validate::validate_into(self, v, path);
        }
    }
    #[automatically_derived]
    impl ::domain_events::__private::schemars::JsonSchema for ShopOrderPlacedV1Payload {
        fn schema_name() -> ::std::borrow::Cow<'static, str> {
            ::std::borrow::Cow::Borrowed("ShopOrderPlacedV1Payload")
        }
        fn json_schema(
            _: &mut ::domain_events::__private::schemars::SchemaGenerator,
        ) -> ::domain_events::__private::schemars::Schema {
            ::domain_events::__private::schema_from_json(
                "ShopOrderPlacedV1Payload",
                "{\"description\":\"Version 1 had no channel.\",\"properties\":{\"orderId\":{\"minLength\":1,\"type\":\"string\"},\"totalCents\":{\"minimum\":0,\"type\":\"integer\"}},\"required\":[\"orderId\",\"totalCents\"],\"title\":\"ShopOrderPlacedV1Payload\",\"type\":\"object\"}",
            )
        }
    }
};
#[allow(deprecated)]
impl ShopOrderPlacedV1Payload {
    /// The type string of this event.
    pub const TYPE: &'static str = "shop:order_placed";
    /// The schema version of this payload.
    pub const VERSION: u32 = 1u32;
}
#[allow(deprecated)]
#[automatically_derived]
impl ::domain_events::EventPayload for ShopOrderPlacedV1Payload {
    const TYPE: &'static str = "shop:order_placed";
    const CATEGORY: &'static str = "shop";
    const NAME: &'static str = "order_placed";
    const VERSION: u32 = 1u32;
    const KEY_TEMPLATE: &'static str = "order_placed:{orderId}";
    const CORRELATION_FIELD: &'static str = "orderId";
    fn idempotency_key(&self) -> ::std::string::String {
        let mut __key = ::std::string::String::with_capacity(29usize);
        __key.push_str("order_placed:");
        ::domain_events::__private::key_part(&self.order_id, &mut __key);
        __key
    }
    fn correlation_id(&self) -> ::std::string::String {
        ::domain_events::__private::correlation(&self.order_id)
    }
}
/// The envelope of `shop:order_placed` version 1.
#[allow(deprecated)]
pub type ShopOrderPlacedV1Event = ::domain_events::Envelope<ShopOrderPlacedV1Payload>;
/// A customer placed an order.
/// Second line of the description.
#[derive(
    ::core::clone::Clone,
    ::core::cmp::PartialEq,
    ::domain_events::__private::serde::Serialize
)]
#[serde(crate = "::domain_events::__private::serde")]
pub struct ShopOrderPlacedPayload {
    /// Id of the order.
    #[serde(rename = "orderId")]
    pub order_id: ::std::string::String,
    /// Where the order came from.
    #[serde(rename = "channel")]
    pub channel: ShopOrderPlacedChannel,
    /// Who ordered.
    #[serde(rename = "customer")]
    pub customer: Customer,
    /// `lines`
    #[serde(rename = "lines")]
    pub lines: ::std::vec::Vec<OrderLine>,
    /// `totalCents`
    #[serde(rename = "totalCents")]
    pub total_cents: u64,
    /// `discount`
    #[serde(
        rename = "discount",
        default,
        skip_serializing_if = "::core::option::Option::is_none"
    )]
    pub discount: ::core::option::Option<f64>,
    /// `currency`
    #[serde(rename = "currency")]
    pub currency: ::std::string::String,
    /// `tags`
    #[serde(
        rename = "tags",
        default,
        skip_serializing_if = "::core::option::Option::is_none"
    )]
    pub tags: ::core::option::Option<::std::vec::Vec<::std::string::String>>,
    /// `attributes`
    #[serde(
        rename = "attributes",
        default,
        skip_serializing_if = "::core::option::Option::is_none"
    )]
    pub attributes: ::core::option::Option<
        ::std::collections::BTreeMap<::std::string::String, ::std::string::String>,
    >,
    /// `placedAt`
    #[serde(rename = "placedAt")]
    pub placed_at: ::domain_events::Timestamp,
    /// `deliveryDate`
    #[serde(
        rename = "deliveryDate",
        default,
        skip_serializing_if = "::core::option::Option::is_none"
    )]
    pub delivery_date: ::core::option::Option<::domain_events::Date>,
    /// `receiptUrl`
    #[serde(
        rename = "receiptUrl",
        default,
        skip_serializing_if = "::core::option::Option::is_none"
    )]
    pub receipt_url: ::core::option::Option<::domain_events::Url>,
    /// Old free-text order type.
    #[deprecated]
    #[serde(
        rename = "type",
        default,
        skip_serializing_if = "::core::option::Option::is_none"
    )]
    pub r#type: ::core::option::Option<::std::string::String>,
}
#[allow(deprecated)]
const _: () = {
    #[automatically_derived]
    impl ::core::fmt::Debug for ShopOrderPlacedPayload {
        fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
            f.debug_struct("ShopOrderPlacedPayload")
                .field("order_id", &self.order_id)
                .field("channel", &self.channel)
                .field("customer", &self.customer)
                .field("lines", &self.lines)
                .field("total_cents", &self.total_cents)
                .field("discount", &self.discount)
                .field("currency", &self.currency)
                .field("tags", &self.tags)
                .field("attributes", &self.attributes)
                .field("placed_at", &self.placed_at)
                .field("delivery_date", &self.delivery_date)
                .field("receipt_url", &self.receipt_url)
                .field("type", &self.r#type)
                .finish()
        }
    }
    #[automatically_derived]
    impl<'de> ::domain_events::__private::serde::Deserialize<'de>
    for ShopOrderPlacedPayload {
        fn deserialize<D: ::domain_events::__private::serde::Deserializer<'de>>(
            d: D,
        ) -> ::core::result::Result<Self, D::Error> {
            #[derive(::domain_events::__private::serde::Deserialize)]
            #[serde(crate = "::domain_events::__private::serde")]
            struct __Raw {
                #[serde(rename = "orderId")]
                order_id: ::std::string::String,
                #[serde(rename = "channel")]
                channel: ShopOrderPlacedChannel,
                #[serde(rename = "customer")]
                customer: Customer,
                #[serde(rename = "lines")]
                lines: ::std::vec::Vec<OrderLine>,
                #[serde(rename = "totalCents")]
                total_cents: u64,
                #[serde(rename = "discount", default)]
                discount: ::core::option::Option<f64>,
                #[serde(rename = "currency")]
                currency: ::std::string::String,
                #[serde(rename = "tags", default)]
                tags: ::core::option::Option<::std::vec::Vec<::std::string::String>>,
                #[serde(rename = "attributes", default)]
                attributes: ::core::option::Option<
                    ::std::collections::BTreeMap<
                        ::std::string::String,
                        ::std::string::String,
                    >,
                >,
                #[serde(rename = "placedAt")]
                placed_at: ::domain_events::Timestamp,
                #[serde(rename = "deliveryDate", default)]
                delivery_date: ::core::option::Option<::domain_events::Date>,
                #[serde(rename = "receiptUrl", default)]
                receipt_url: ::core::option::Option<::domain_events::Url>,
                #[serde(rename = "type", default)]
                r#type: ::core::option::Option<::std::string::String>,
            }
            let __raw = <__Raw as ::domain_events::__private::serde::Deserialize>::deserialize(
                d,
            )?;
            ::domain_events::__private::checked::<
                D,
                Self,
            >(Self {
                order_id: __raw.order_id,
                channel: __raw.channel,
                customer: __raw.customer,
                lines: __raw.lines,
                total_cents: __raw.total_cents,
                discount: __raw.discount,
                currency: __raw.currency,
                tags: __raw.tags,
                attributes: __raw.attributes,
                placed_at: __raw.placed_at,
                delivery_date: __raw.delivery_date,
                receipt_url: __raw.receipt_url,
                r#type: __raw.r#type,
            })
        }
    }
    #[automatically_derived]
    impl ::domain_events::Validate for ShopOrderPlacedPayload {
        #[allow(unused_variables)]
        fn validate_into(
            &self,
            __v: &mut ::domain_events::__private::Validator,
            __path: &::domain_events::__private::Path<'_>,
        ) {
            ::domain_events::__private::Check::check(
                &self.order_id,
                __v,
                &__path.field("orderId"),
                {
                    static __C: ::domain_events::__private::Constraints = ::domain_events::__private::Constraints {
                        min: ::core::option::Option::None,
                        max: ::core::option::Option::None,
                        min_length: ::core::option::Option::Some(1u64),
                        max_length: ::core::option::Option::None,
                        pattern: ::core::option::Option::None,
                        min_items: ::core::option::Option::None,
                        max_items: ::core::option::Option::None,
                    };
                    &__C
                },
            );
            ::domain_events::__private::Check::check(
                &self.customer,
                __v,
                &__path.field("customer"),
                &::domain_events::__private::Constraints::NONE,
            );
            ::domain_events::__private::Check::check(
                &self.lines,
                __v,
                &__path.field("lines"),
                {
                    static __C: ::domain_events::__private::Constraints = ::domain_events::__private::Constraints {
                        min: ::core::option::Option::None,
                        max: ::core::option::Option::None,
                        min_length: ::core::option::Option::None,
                        max_length: ::core::option::Option::None,
                        pattern: ::core::option::Option::None,
                        min_items: ::core::option::Option::Some(1u64),
                        max_items: ::core::option::Option::Some(50u64),
                    };
                    &__C
                },
            );
            ::domain_events::__private::Check::check(
                &self.total_cents,
                __v,
                &__path.field("totalCents"),
                {
                    static __C: ::domain_events::__private::Constraints = ::domain_events::__private::Constraints {
                        min: ::core::option::Option::Some(
                            ::domain_events::__private::Bound::Int(1i128),
                        ),
                        max: ::core::option::Option::None,
                        min_length: ::core::option::Option::None,
                        max_length: ::core::option::Option::None,
                        pattern: ::core::option::Option::None,
                        min_items: ::core::option::Option::None,
                        max_items: ::core::option::Option::None,
                    };
                    &__C
                },
            );
            ::domain_events::__private::Check::check(
                &self.discount,
                __v,
                &__path.field("discount"),
                {
                    static __C: ::domain_events::__private::Constraints = ::domain_events::__private::Constraints {
                        min: ::core::option::Option::Some(
                            ::domain_events::__private::Bound::Float(0f64),
                        ),
                        max: ::core::option::Option::Some(
                            ::domain_events::__private::Bound::Float(1f64),
                        ),
                        min_length: ::core::option::Option::None,
                        max_length: ::core::option::Option::None,
                        pattern: ::core::option::Option::None,
                        min_items: ::core::option::Option::None,
                        max_items: ::core::option::Option::None,
                    };
                    &__C
                },
            );
            ::domain_events::__private::Check::check(
                &self.currency,
                __v,
                &__path.field("currency"),
                {
                    static __P: ::domain_events::__private::Pattern = ::domain_events::__private::Pattern::new(
                        "^[A-Z]{3}$",
                    );
                    static __C: ::domain_events::__private::Constraints = ::domain_events::__private::Constraints {
                        min: ::core::option::Option::None,
                        max: ::core::option::Option::None,
                        min_length: ::core::option::Option::None,
                        max_length: ::core::option::Option::None,
                        pattern: ::core::option::Option::Some(&__P),
                        min_items: ::core::option::Option::None,
                        max_items: ::core::option::Option::None,
                    };
                    &__C
                },
            );
            ::domain_events::__private::Check::check(
                &self.tags,
                __v,
                &__path.field("tags"),
                {
                    static __C: ::domain_events::__private::Constraints = ::domain_events::__private::Constraints {
                        min: ::core::option::Option::None,
                        max: ::core::option::Option::None,
                        min_length: ::core::option::Option::None,
                        max_length: ::core::option::Option::Some(20u64),
                        pattern: ::core::option::Option::None,
                        min_items: ::core::option::Option::None,
                        max_items: ::core::option::Option::None,
                    };
                    &__C
                },
            );
        }
    }
    #[automatically_derived]
    impl ::domain_events::__private::Check for ShopOrderPlacedPayload {
        fn check(
            &self,
            v: &mut ::domain_events::__private::Validator,
            path: &::domain_events::__private::Path<'_>,
            _: &::domain_events::__private::Constraints,
        ) {
            ::domain_events::Validate::validate_into(self, v, path);
        }
    }
    #[automatically_derived]
    impl ::domain_events::__private::schemars::JsonSchema for ShopOrderPlacedPayload {
        fn schema_name() -> ::std::borrow::Cow<'static, str> {
            ::std::borrow::Cow::Borrowed("ShopOrderPlacedPayload")
        }
        fn json_schema(
            _: &mut ::domain_events::__private::schemars::SchemaGenerator,
        ) -> ::domain_events::__private::schemars::Schema {
            ::domain_events::__private::schema_from_json(
                "ShopOrderPlacedPayload",
                "{\"description\":\"A customer placed an order.\\nSecond line of the description.\",\"properties\":{\"attributes\":{\"additionalProperties\":{\"type\":\"string\"},\"type\":\"object\"},\"channel\":{\"description\":\"Where the order came from.\",\"enum\":[\"web\",\"mobile-app\",\"2fa\"],\"type\":\"string\"},\"currency\":{\"pattern\":\"^[A-Z]{3}$\",\"type\":\"string\"},\"customer\":{\"description\":\"Who ordered.\",\"properties\":{\"customerId\":{\"minLength\":1,\"type\":\"string\"},\"email\":{\"format\":\"email\",\"type\":\"string\"},\"loyalty\":{\"enum\":[\"bronze\",\"silver\",\"gold\"],\"type\":\"string\"}},\"required\":[\"customerId\",\"email\"],\"title\":\"Customer\",\"type\":\"object\"},\"deliveryDate\":{\"format\":\"date\",\"type\":\"string\"},\"discount\":{\"maximum\":1.0,\"minimum\":0.0,\"type\":\"number\"},\"lines\":{\"items\":{\"properties\":{\"quantity\":{\"minimum\":1,\"type\":\"integer\"},\"sku\":{\"type\":\"string\"},\"unitCents\":{\"minimum\":0,\"type\":\"integer\"}},\"required\":[\"sku\",\"quantity\",\"unitCents\"],\"title\":\"OrderLine\",\"type\":\"object\"},\"maxItems\":50,\"minItems\":1,\"type\":\"array\"},\"orderId\":{\"description\":\"Id of the order.\",\"minLength\":1,\"type\":\"string\"},\"placedAt\":{\"format\":\"date-time\",\"type\":\"string\"},\"receiptUrl\":{\"format\":\"uri\",\"type\":\"string\"},\"tags\":{\"items\":{\"maxLength\":20,\"type\":\"string\"},\"type\":\"array\"},\"totalCents\":{\"minimum\":1,\"type\":\"integer\"},\"type\":{\"deprecated\":true,\"description\":\"Old free-text order type.\",\"type\":\"string\"}},\"required\":[\"orderId\",\"channel\",\"customer\",\"lines\",\"totalCents\",\"currency\",\"placedAt\"],\"title\":\"ShopOrderPlacedPayload\",\"type\":\"object\"}",
            )
        }
    }
};
#[allow(deprecated)]
impl ShopOrderPlacedPayload {
    /// The type string of this event.
    pub const TYPE: &'static str = "shop:order_placed";
    /// The schema version of this payload.
    pub const VERSION: u32 = 2u32;
}
#[allow(deprecated)]
#[automatically_derived]
impl ::domain_events::EventPayload for ShopOrderPlacedPayload {
    const TYPE: &'static str = "shop:order_placed";
    const CATEGORY: &'static str = "shop";
    const NAME: &'static str = "order_placed";
    const VERSION: u32 = 2u32;
    const KEY_TEMPLATE: &'static str = "order_placed:{orderId}:{channel}";
    const CORRELATION_FIELD: &'static str = "orderId";
    fn idempotency_key(&self) -> ::std::string::String {
        let mut __key = ::std::string::String::with_capacity(46usize);
        __key.push_str("order_placed:");
        ::domain_events::__private::key_part(&self.order_id, &mut __key);
        __key.push(':');
        ::domain_events::__private::key_part(&self.channel, &mut __key);
        __key
    }
    fn correlation_id(&self) -> ::std::string::String {
        ::domain_events::__private::correlation(&self.order_id)
    }
}
/// The envelope of `shop:order_placed` version 2.
#[allow(deprecated)]
pub type ShopOrderPlacedEvent = ::domain_events::Envelope<ShopOrderPlacedPayload>;
/// An order was cancelled.
#[deprecated]
#[derive(
    ::core::clone::Clone,
    ::core::cmp::PartialEq,
    ::domain_events::__private::serde::Serialize
)]
#[serde(crate = "::domain_events::__private::serde")]
pub struct ShopOrderCancelledPayload {
    /// `orderId`
    #[serde(rename = "orderId")]
    pub order_id: ::std::string::String,
    /// `reason`
    #[serde(rename = "reason")]
    pub reason: Reason,
    /// `refunded`
    #[serde(rename = "refunded")]
    pub refunded: bool,
    /// `requestId`
    #[serde(rename = "requestId")]
    pub request_id: ::domain_events::Uuid,
}
#[allow(deprecated)]
const _: () = {
    #[automatically_derived]
    impl ::core::fmt::Debug for ShopOrderCancelledPayload {
        fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
            f.debug_struct("ShopOrderCancelledPayload")
                .field("order_id", &self.order_id)
                .field("reason", &self.reason)
                .field("refunded", &self.refunded)
                .field("request_id", &self.request_id)
                .finish()
        }
    }
    #[automatically_derived]
    impl<'de> ::domain_events::__private::serde::Deserialize<'de>
    for ShopOrderCancelledPayload {
        fn deserialize<D: ::domain_events::__private::serde::Deserializer<'de>>(
            d: D,
        ) -> ::core::result::Result<Self, D::Error> {
            #[derive(::domain_events::__private::serde::Deserialize)]
            #[serde(crate = "::domain_events::__private::serde")]
            struct __Raw {
                #[serde(rename = "orderId")]
                order_id: ::std::string::String,
                #[serde(rename = "reason")]
                reason: Reason,
                #[serde(rename = "refunded")]
                refunded: bool,
                #[serde(rename = "requestId")]
                request_id: ::domain_events::Uuid,
            }
            let __raw = <__Raw as ::domain_events::__private::serde::Deserialize>::deserialize(
                d,
            )?;
            ::domain_events::__private::checked::<
                D,
                Self,
            >(Self {
                order_id: __raw.order_id,
                reason: __raw.reason,
                refunded: __raw.refunded,
                request_id: __raw.request_id,
            })
        }
    }
    #[automatically_derived]
    impl ::domain_events::Validate for ShopOrderCancelledPayload {
        #[allow(unused_variables)]
        fn validate_into(
            &self,
            __v: &mut ::domain_events::__private::Validator,
            __path: &::domain_events::__private::Path<'_>,
        ) {}
    }
    #[automatically_derived]
    impl ::domain_events::__private::Check for ShopOrderCancelledPayload {
        fn check(
            &self,
            v: &mut ::domain_events::__private::Validator,
            path: &::domain_events::__private::Path<'_>,
            _: &::domain_events::__private::Constraints,
        ) {
            ::domain_events::Validate::validate_into(self, v, path);
        }
    }
    #[automatically_derived]
    impl ::domain_events::__private::schemars::JsonSchema for ShopOrderCancelledPayload {
        fn schema_name() -> ::std::borrow::Cow<'static, str> {
            ::std::borrow::Cow::Borrowed("ShopOrderCancelledPayload")
        }
        fn json_schema(
            _: &mut ::domain_events::__private::schemars::SchemaGenerator,
        ) -> ::domain_events::__private::schemars::Schema {
            ::domain_events::__private::schema_from_json(
                "ShopOrderCancelledPayload",
                "{\"deprecated\":true,\"description\":\"An order was cancelled.\",\"properties\":{\"orderId\":{\"type\":\"string\"},\"reason\":{\"description\":\"Why an order was cancelled.\",\"enum\":[\"customer_request\",\"out_of_stock\",\"fraud\"],\"type\":\"string\"},\"refunded\":{\"type\":\"boolean\"},\"requestId\":{\"format\":\"uuid\",\"type\":\"string\"}},\"required\":[\"orderId\",\"reason\",\"refunded\",\"requestId\"],\"title\":\"ShopOrderCancelledPayload\",\"type\":\"object\"}",
            )
        }
    }
};
#[allow(deprecated)]
impl ShopOrderCancelledPayload {
    /// The type string of this event.
    pub const TYPE: &'static str = "shop:order_cancelled";
    /// The schema version of this payload.
    pub const VERSION: u32 = 1u32;
}
#[allow(deprecated)]
#[automatically_derived]
impl ::domain_events::EventPayload for ShopOrderCancelledPayload {
    const TYPE: &'static str = "shop:order_cancelled";
    const CATEGORY: &'static str = "shop";
    const NAME: &'static str = "order_cancelled";
    const VERSION: u32 = 1u32;
    const KEY_TEMPLATE: &'static str = "order_cancelled:{orderId}";
    const CORRELATION_FIELD: &'static str = "orderId";
    fn idempotency_key(&self) -> ::std::string::String {
        let mut __key = ::std::string::String::with_capacity(32usize);
        __key.push_str("order_cancelled:");
        ::domain_events::__private::key_part(&self.order_id, &mut __key);
        __key
    }
    fn correlation_id(&self) -> ::std::string::String {
        ::domain_events::__private::correlation(&self.order_id)
    }
}
/// The envelope of `shop:order_cancelled` version 1.
#[allow(deprecated)]
pub type ShopOrderCancelledEvent = ::domain_events::Envelope<ShopOrderCancelledPayload>;
/// Every event type of this catalog. Its string form is the type string
/// (`Display`, `FromStr` and serde all use it).
#[allow(deprecated)]
#[derive(
    ::core::clone::Clone,
    ::core::marker::Copy,
    ::core::cmp::PartialEq,
    ::core::cmp::Eq,
    ::core::hash::Hash,
    ::core::cmp::PartialOrd,
    ::core::cmp::Ord,
    ::core::fmt::Debug
)]
pub enum DomainEventType {
    /// `shop:order_placed`: A customer placed an order.
    ShopOrderPlaced,
    /// `shop:order_cancelled`: An order was cancelled.
    #[deprecated]
    ShopOrderCancelled,
}
#[allow(deprecated)]
impl DomainEventType {
    /// Every event type, in schema order.
    pub const ALL: &'static [Self] = &[Self::ShopOrderPlaced, Self::ShopOrderCancelled];
    /// The type string, `<category>:<name>`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ShopOrderPlaced => "shop:order_placed",
            Self::ShopOrderCancelled => "shop:order_cancelled",
        }
    }
    /// The category.
    pub const fn category(self) -> &'static str {
        match self {
            Self::ShopOrderPlaced => "shop",
            Self::ShopOrderCancelled => "shop",
        }
    }
    /// The event name within its category.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ShopOrderPlaced => "order_placed",
            Self::ShopOrderCancelled => "order_cancelled",
        }
    }
    /// The version emitters produce.
    pub const fn version(self) -> u32 {
        match self {
            Self::ShopOrderPlaced => 2u32,
            Self::ShopOrderCancelled => 1u32,
        }
    }
    /// Everything known about the version emitters produce.
    pub fn info(self) -> &'static ::domain_events::EventInfo {
        let (t, v) = (self.as_str(), self.version());
        EVENTS.iter().find(|e| e.event_type == t && e.version == v).unwrap_or(&EVENTS[0])
    }
}
#[allow(deprecated)]
const _: () = {
    #[automatically_derived]
    impl ::core::fmt::Display for DomainEventType {
        fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
            f.write_str(self.as_str())
        }
    }
    #[automatically_derived]
    impl ::core::str::FromStr for DomainEventType {
        type Err = ::domain_events::UnknownValue;
        fn from_str(s: &str) -> ::core::result::Result<Self, Self::Err> {
            match s {
                "shop:order_placed" => ::core::result::Result::Ok(Self::ShopOrderPlaced),
                "shop:order_cancelled" => {
                    ::core::result::Result::Ok(Self::ShopOrderCancelled)
                }
                other => {
                    ::core::result::Result::Err(
                        ::domain_events::UnknownValue::new(
                            other,
                            "a type string of this catalog",
                        ),
                    )
                }
            }
        }
    }
    #[automatically_derived]
    impl ::domain_events::__private::serde::Serialize for DomainEventType {
        fn serialize<S: ::domain_events::__private::serde::Serializer>(
            &self,
            s: S,
        ) -> ::core::result::Result<S::Ok, S::Error> {
            s.serialize_str(self.as_str())
        }
    }
    #[automatically_derived]
    impl<'de> ::domain_events::__private::serde::Deserialize<'de> for DomainEventType {
        fn deserialize<D: ::domain_events::__private::serde::Deserializer<'de>>(
            d: D,
        ) -> ::core::result::Result<Self, D::Error> {
            ::domain_events::__private::from_str_deserialize(d)
        }
    }
};
/// Every event version of this catalog, decoded and checked.
#[allow(deprecated, clippy::large_enum_variant)]
pub enum DomainEvent {
    /// `shop:order_placed` version 1.
    ShopOrderPlacedV1(ShopOrderPlacedV1Event),
    /// `shop:order_placed` version 2.
    ShopOrderPlaced(ShopOrderPlacedEvent),
    /// `shop:order_cancelled` version 1.
    ShopOrderCancelled(ShopOrderCancelledEvent),
}
#[allow(deprecated)]
impl DomainEvent {
    /// Decodes envelope JSON, checking type, version and payload.
    pub fn from_json(
        bytes: &[u8],
    ) -> ::core::result::Result<Self, ::domain_events::DecodeError> {
        <Self as ::domain_events::EventSet>::decode(
            &::domain_events::RawEnvelope::from_slice(bytes)?,
        )
    }
    /// The event type.
    pub fn kind(&self) -> DomainEventType {
        match self {
            Self::ShopOrderPlacedV1(_) => DomainEventType::ShopOrderPlaced,
            Self::ShopOrderPlaced(_) => DomainEventType::ShopOrderPlaced,
            Self::ShopOrderCancelled(_) => DomainEventType::ShopOrderCancelled,
        }
    }
    /// The schema version of the payload.
    pub fn version(&self) -> u32 {
        match self {
            Self::ShopOrderPlacedV1(_) => 1u32,
            Self::ShopOrderPlaced(_) => 2u32,
            Self::ShopOrderCancelled(_) => 1u32,
        }
    }
    /// The variant's position in declaration order: the index of the tables below.
    const fn variant_index(&self) -> usize {
        match self {
            Self::ShopOrderPlacedV1(_) => 0usize,
            Self::ShopOrderPlaced(_) => 1usize,
            Self::ShopOrderCancelled(_) => 2usize,
        }
    }
}
#[allow(deprecated, unreachable_patterns)]
const _: () = {
    #[automatically_derived]
    impl ::core::clone::Clone for DomainEvent {
        fn clone(&self) -> Self {
            const CLONE: &[fn(&DomainEvent) -> DomainEvent] = &[
                |e| match e {
                    DomainEvent::ShopOrderPlacedV1(p) => {
                        DomainEvent::ShopOrderPlacedV1(::core::clone::Clone::clone(p))
                    }
                    _ => ::core::unreachable!(),
                },
                |e| match e {
                    DomainEvent::ShopOrderPlaced(p) => {
                        DomainEvent::ShopOrderPlaced(::core::clone::Clone::clone(p))
                    }
                    _ => ::core::unreachable!(),
                },
                |e| match e {
                    DomainEvent::ShopOrderCancelled(p) => {
                        DomainEvent::ShopOrderCancelled(::core::clone::Clone::clone(p))
                    }
                    _ => ::core::unreachable!(),
                },
            ];
            CLONE[self.variant_index()](self)
        }
    }
    #[automatically_derived]
    impl ::core::fmt::Debug for DomainEvent {
        fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
            const DEBUG: &[fn(
                &DomainEvent,
                &mut ::core::fmt::Formatter<'_>,
            ) -> ::core::fmt::Result] = &[
                |e, f| match e {
                    DomainEvent::ShopOrderPlacedV1(p) => {
                        f.debug_tuple("ShopOrderPlacedV1").field(p).finish()
                    }
                    _ => ::core::unreachable!(),
                },
                |e, f| match e {
                    DomainEvent::ShopOrderPlaced(p) => {
                        f.debug_tuple("ShopOrderPlaced").field(p).finish()
                    }
                    _ => ::core::unreachable!(),
                },
                |e, f| match e {
                    DomainEvent::ShopOrderCancelled(p) => {
                        f.debug_tuple("ShopOrderCancelled").field(p).finish()
                    }
                    _ => ::core::unreachable!(),
                },
            ];
            DEBUG[self.variant_index()](self, f)
        }
    }
    #[automatically_derived]
    impl ::core::cmp::PartialEq for DomainEvent {
        fn eq(&self, other: &Self) -> bool {
            const EQ: &[fn(&DomainEvent, &DomainEvent) -> bool] = &[
                |a, b| match (a, b) {
                    (
                        DomainEvent::ShopOrderPlacedV1(a),
                        DomainEvent::ShopOrderPlacedV1(b),
                    ) => a == b,
                    _ => false,
                },
                |a, b| match (a, b) {
                    (
                        DomainEvent::ShopOrderPlaced(a),
                        DomainEvent::ShopOrderPlaced(b),
                    ) => a == b,
                    _ => false,
                },
                |a, b| match (a, b) {
                    (
                        DomainEvent::ShopOrderCancelled(a),
                        DomainEvent::ShopOrderCancelled(b),
                    ) => a == b,
                    _ => false,
                },
            ];
            let index = self.variant_index();
            index == other.variant_index() && EQ[index](self, other)
        }
    }
};
#[allow(deprecated)]
#[automatically_derived]
impl ::domain_events::EventSet for DomainEvent {
    const EVENTS: &'static [::domain_events::EventInfo] = EVENTS;
    fn decode(
        raw: &::domain_events::RawEnvelope,
    ) -> ::core::result::Result<Self, ::domain_events::DecodeError> {
        type Decoder = fn(
            &::domain_events::RawEnvelope,
        ) -> ::core::result::Result<DomainEvent, ::domain_events::DecodeError>;
        const DECODERS: &[(&str, u32, Decoder)] = &[
            (
                "shop:order_cancelled",
                1u32,
                |raw| {
                    raw
                        .decode::<ShopOrderCancelledPayload>()
                        .map(DomainEvent::ShopOrderCancelled)
                },
            ),
            (
                "shop:order_placed",
                1u32,
                |raw| {
                    raw
                        .decode::<ShopOrderPlacedV1Payload>()
                        .map(DomainEvent::ShopOrderPlacedV1)
                },
            ),
            (
                "shop:order_placed",
                2u32,
                |raw| {
                    raw
                        .decode::<ShopOrderPlacedPayload>()
                        .map(DomainEvent::ShopOrderPlaced)
                },
            ),
        ];
        let key = (raw.event_type.as_str(), raw.version);
        match DECODERS.binary_search_by(|(t, v, _)| (*t, *v).cmp(&key)) {
            ::core::result::Result::Ok(i) => (DECODERS[i].2)(raw),
            ::core::result::Result::Err(_) => {
                ::core::result::Result::Err(
                    ::domain_events::__private::unknown_event::<Self>(key.0, key.1),
                )
            }
        }
    }
    fn event_type(&self) -> &'static str {
        self.kind().as_str()
    }
}
/// Every event version of this catalog, with its key template, correlation field and flags.
pub const EVENTS: &[::domain_events::EventInfo] = &[
    ::domain_events::EventInfo {
        event_type: "shop:order_placed",
        category: "shop",
        name: "order_placed",
        version: 1u32,
        latest: false,
        key_template: "order_placed:{orderId}",
        correlation_field: "orderId",
        deprecated: false,
        description: "Version 1 had no channel.",
    },
    ::domain_events::EventInfo {
        event_type: "shop:order_placed",
        category: "shop",
        name: "order_placed",
        version: 2u32,
        latest: true,
        key_template: "order_placed:{orderId}:{channel}",
        correlation_field: "orderId",
        deprecated: false,
        description: "A customer placed an order.\nSecond line of the description.",
    },
    ::domain_events::EventInfo {
        event_type: "shop:order_cancelled",
        category: "shop",
        name: "order_cancelled",
        version: 1u32,
        latest: true,
        key_template: "order_cancelled:{orderId}",
        correlation_field: "orderId",
        deprecated: true,
        description: "An order was cancelled.",
    },
];
#[doc(hidden)]
#[macro_export]
macro_rules! __emitter_events_981d204ab7be824f {
    ({ $($expand:tt)* } $($input:tt)*) => {
        $($expand)* ! { ["shop:order_placed", "shop:order_cancelled"] $($input)* }
    };
}
#[doc(hidden)]
#[allow(unused_imports)]
pub use __emitter_events_981d204ab7be824f as __emitter_events;
