//! Chat templates: the Jinja template from GGUF metadata
//! (`tokenizer.chat_template`), rendered with minijinja; ChatML when absent.

use crate::{EngineError, Result};
use minijinja::{context, Environment, ErrorKind};
use serde::{Deserialize, Serialize};

/// ChatML, the format Qwen models are trained on; used when a GGUF has no template.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Today's date for templates that print it (Llama 3's do, with "%d %b %Y").
/// Supports %d, %m, %Y, %b, %B and %%; other directives pass through.
fn strftime_now(fmt: String) -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0) as i64;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const MONTHS: [&str; 12] = [
        "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
        "December",
    ];
    let name = MONTHS[(month - 1) as usize];
    let mut out = String::new();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('Y') => out.push_str(&year.to_string()),
            Some('b') => out.push_str(&name[..3]),
            Some('B') => out.push_str(name),
            Some('%') => out.push('%'),
            Some(o) => {
                out.push('%');
                out.push(o);
            }
            None => out.push('%'),
        }
    }
    out
}

/// One chat message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    pub source: String,
    pub is_fallback: bool,
    bos_token: String,
    eos_token: String,
}

impl ChatTemplate {
    /// Compiles `template` (or ChatML when `None`).
    pub fn new(template: Option<String>, bos_token: String, eos_token: String) -> Result<Self> {
        let is_fallback = template.is_none();
        let source = template.unwrap_or_else(|| CHATML_TEMPLATE.to_string());
        let mut env = Environment::new();
        // Templates written for Python's Jinja call str methods (.strip(), .startswith()…).
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", strftime_now);
        env.add_template_owned("chat", source.clone())?;
        Ok(Self { env, source, is_fallback, bos_token, eos_token })
    }

    /// Renders the conversation, ending with the assistant's turn opened.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        if messages.is_empty() {
            return Err(EngineError::invalid("messages must not be empty"));
        }
        for m in messages {
            if !matches!(m.role.as_str(), "system" | "user" | "assistant" | "tool") {
                return Err(EngineError::invalid(format!(
                    "unknown message role '{}' (system, user, assistant, tool)",
                    m.role
                )));
            }
        }
        let tmpl = self.env.get_template("chat")?;
        Ok(tmpl.render(context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token,
            eos_token => self.eos_token,
            tools => minijinja::Value::from(()),
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strftime_now_formats_a_plausible_date() {
        let s = strftime_now("%d %b %Y".into());
        let parts: Vec<&str> = s.split(' ').collect();
        assert_eq!(parts.len(), 3, "{s}");
        assert!(parts[0].len() == 2 && parts[0].parse::<u32>().is_ok_and(|d| (1..=31).contains(&d)), "{s}");
        assert!(parts[2].parse::<u32>().is_ok_and(|y| y >= 2024), "{s}");
        assert_eq!(strftime_now("100%%".into()), "100%");
    }

    #[test]
    fn python_style_templates_render() {
        let src = "{% for m in messages %}{{ m['content'].strip() | upper }}{% if not loop.last %}|{% endif %}{% endfor %}";
        let t = ChatTemplate::new(Some(src.into()), String::new(), String::new()).unwrap();
        let msgs = vec![
            ChatMessage { role: "system".into(), content: "  a ".into() },
            ChatMessage { role: "user".into(), content: "b".into() },
        ];
        assert_eq!(t.render(&msgs, true).unwrap(), "A|B");
    }

    #[test]
    fn raise_exception_becomes_invalid_input() {
        let t = ChatTemplate::new(Some("{{ raise_exception('no system role') }}".into()), String::new(), String::new()).unwrap();
        let e = t.render(&[ChatMessage { role: "user".into(), content: "x".into() }], true).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::InvalidInput);
        assert!(e.to_string().contains("no system role"));
    }
}
