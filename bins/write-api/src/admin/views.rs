//! The console's page frame and form widgets (maud: checked at compile time,
//! every interpolation HTML-escaped).

use maud::{html, Markup, DOCTYPE};

/// A page of a signed-in admin: navigation, sign-out, content.
pub fn page(title: &str, csrf: &str, content: Markup) -> Markup {
    frame(
        title,
        html! {
            header.top {
                nav aria-label="Console" {
                    a href="/admin/videos" { "Videos" }
                    a href="/admin/videos/new" { "New video" }
                    a href="/admin/import" { "Import" }
                }
                form.signout method="post" action="/admin/sign-out" {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Sign out" }
                }
            }
        },
        content,
    )
}

/// A page without the signed-in navigation (sign-in, errors).
pub fn bare_page(title: &str, content: Markup) -> Markup {
    frame(title, html! {}, content)
}

fn frame(title: &str, top: Markup, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Video admin" }
                link rel="stylesheet" href="/admin/console.css";
            }
            body {
                (top)
                main {
                    h1 { (title) }
                    (content)
                }
            }
        }
    }
}

/// A notice at the top of a page (`role="status"`, or `alert` for errors).
pub fn notice(kind: &str, text: Markup) -> Markup {
    let role = if kind == "error" { "alert" } else { "status" };
    html! { div class={ "notice " (kind) } role=(role) { (text) } }
}

/// The error of one form field, announced with it (`aria-describedby`).
pub fn field_error(id: &str, error: Option<&str>) -> Markup {
    html! {
        @if let Some(error) = error {
            p.field-error id={ (id) "-error" } { (error) }
        }
    }
}
