//! The migrations are compiled in (`sqlx::migrate!`): a new or changed
//! migration must rebuild the crate.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
