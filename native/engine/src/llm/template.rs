//! Chat templates: the Jinja template from GGUF metadata
//! (`tokenizer.chat_template`), rendered with minijinja; ChatML when absent.

use crate::{EngineError, Result};
use minijinja::{context, Environment, ErrorKind};
use serde::{Deserialize, Serialize};

/// ChatML, the format Qwen models are trained on; used when a GGUF has no template.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

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
        env.add_function("strftime_now", |_fmt: String| -> String { String::new() });
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
