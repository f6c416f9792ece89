//! `templates/`: minijinja templates, HTML-escaped by default for `.html`,
//! `.htm` and `.xml` files (autoescaping), loaded and checked at start so a
//! syntax error is a startup error naming the file, not a broken page.

use std::path::Path;

use minijinja::Environment;

use crate::app::AppError;

/// Loads every file under `dir` (names are paths relative to it, with
/// `/`). A missing folder is an application without templates.
pub fn load(dir: &Path) -> Result<Environment<'static>, AppError> {
    let mut env = Environment::new();
    if dir.is_dir() {
        add_dir(&mut env, dir, dir)?;
    }
    Ok(env)
}

fn add_dir(env: &mut Environment<'static>, root: &Path, dir: &Path) -> Result<(), AppError> {
    let read = |source| AppError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(read)?
        .collect::<Result<_, _>>()
        .map_err(read)?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            add_dir(env, root, &path)?;
            continue;
        }
        let source = std::fs::read_to_string(&path).map_err(|source| AppError::Read {
            path: path.clone(),
            source,
        })?;
        let name = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        env.add_template_owned(name, source)
            .map_err(|e| AppError::Template {
                path: path.clone(),
                problem: e.to_string(),
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_load_escape_and_report_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("posts")).unwrap();
        std::fs::write(
            dir.path().join("base.html"),
            "<main>{% block body %}{% endblock %}</main>",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("posts/one.html"),
            "{% extends \"base.html\" %}{% block body %}<h1>{{ row.title }}</h1>{% endblock %}",
        )
        .unwrap();
        let env = load(dir.path()).unwrap();
        let html = env
            .get_template("posts/one.html")
            .unwrap()
            .render(serde_json::json!({"row": {"title": "<script>x</script>"}}))
            .unwrap();
        assert_eq!(
            html,
            "<main><h1>&lt;script&gt;x&lt;&#x2f;script&gt;</h1></main>"
        );
        std::fs::write(dir.path().join("broken.html"), "{% if %}").unwrap();
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("broken.html"), "{e}");
        assert!(load(&dir.path().join("none")).is_ok());
    }
}
