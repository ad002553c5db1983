"""A picker of names: chips of the names picked, and a box to type or choose more.

Names come from documents (agent names), so the picker shows them as text and
never as markup: it is drawn with ``textContent`` and a native ``<datalist>``.
(Bokeh's ``MultiChoice`` renders its options as HTML through Choices.js, which
also warns on every page that it will stop doing so.)
"""

from __future__ import annotations

import param
from panel.custom import JSComponent


class NamesPicker(JSComponent):
    """Pick some of ``options`` (``[value, label]`` pairs) by typing a label or a value, or
    choosing one from the list under the box; each picked one is a chip with a button
    that removes it.

    A picked value that is no option (a link may name anything) shows as it is, marked
    as unknown.  Typing a label picks its value; text that matches no option is picked
    as it is, for the owner of ``value`` to accept or refuse.
    """

    value = param.List(default=[], item_type=str, doc="The values picked.")
    options = param.List(default=[], doc="What can be picked: [value, label] pairs.")
    label = param.String(default="", doc="The label above the box.")
    placeholder = param.String(default="", doc="What the empty box says (nothing picked).")

    _esm = """
    let serial = 0
    export function render({ model, el }) {
      const id = `agentdash-names-${++serial}`
      const title = document.createElement("label")
      title.className = "names-label"
      title.htmlFor = `${id}-input`
      const chips = document.createElement("div")
      chips.className = "names-chips"
      const input = document.createElement("input")
      input.type = "text"
      input.id = `${id}-input`
      input.className = "names-input"
      input.autocomplete = "off"
      input.setAttribute("list", `${id}-list`)
      const list = document.createElement("datalist")
      list.id = `${id}-list`
      const labels = () => new Map(model.options.map(([value, label]) => [value, label]))
      const draw = () => {
        const known = labels()
        title.textContent = model.label
        const shown = model.value.map((value) => {
          const chip = document.createElement("span")
          chip.className = "names-chip"
          const text = document.createElement("span")
          const label = known.get(value)
          const unknown = label === undefined && ![...known.values()].includes(value)
          text.textContent = label ?? value
          if (unknown) {
            chip.classList.add("names-unknown")
            chip.title = "not in the list: matches nothing"
            text.textContent += " (unknown)"
          }
          const remove = document.createElement("button")
          remove.type = "button"
          remove.className = "names-remove"
          remove.textContent = "\\u00d7"
          remove.setAttribute("aria-label", `remove ${label ?? value}`)
          remove.addEventListener("click", () => {
            model.value = model.value.filter((other) => other !== value)
          })
          chip.append(text, remove)
          return chip
        })
        chips.replaceChildren(...shown)
        chips.hidden = shown.length === 0
        list.replaceChildren(...model.options
          .filter(([value]) => !model.value.includes(value))
          .map(([, label]) => {
            const option = document.createElement("option")
            option.value = label
            return option
          }))
        input.placeholder = model.value.length ? "add one…" : model.placeholder
      }
      const pick = (text) => {
        const wanted = text.trim()
        if (!wanted) return
        const lower = wanted.toLowerCase()
        const match = model.options.find(
          ([value, label]) => label.toLowerCase() === lower || value.toLowerCase() === lower
        )
        const value = match ? match[0] : wanted
        if (!model.value.includes(value)) model.value = [...model.value, value]
        input.value = ""
      }
      input.addEventListener("keydown", (event) => {
        if (event.key === "Enter") {
          event.preventDefault()
          pick(input.value)
        } else if (event.key === "Backspace" && !input.value && model.value.length) {
          model.value = model.value.slice(0, -1)
        }
      })
      // A choice from the list arrives as one replacement of the text, not as typing.
      input.addEventListener("input", (event) => {
        if (event.inputType === undefined || event.inputType === "insertReplacementText") {
          pick(input.value)
        }
      })
      model.on(["value", "options", "label", "placeholder"], draw)
      draw()
      const box = document.createElement("div")
      box.className = "names"
      box.append(title, chips, input, list)
      el.append(box)
    }
    """

    _stylesheets = [
        """
        .names {
          display: flex;
          flex-direction: column;
          box-sizing: border-box;
          width: 100%;
          padding: 5px 10px;  /* as the widgets around it */
        }
        .names-label { margin-bottom: 4px; }
        .names-chips { display: flex; flex-wrap: wrap; gap: 4px; margin-bottom: 4px; }
        .names-chips[hidden] { display: none; }
        .names-chip {
          display: inline-flex;
          align-items: center;
          border-radius: 4px;
          padding: 1px 2px 1px 8px;
          background: var(--panel-primary-color, #0072b5);
          color: var(--panel-on-primary-color, #ffffff);
        }
        .names-unknown { font-style: italic; opacity: 0.8; }
        .names-remove {
          font: inherit;
          border: none;
          background: transparent;
          color: inherit;
          cursor: pointer;
          padding: 0 6px;
        }
        .names-input {
          box-sizing: border-box;
          width: 100%;
          font: inherit;
          padding: 6px 8px;
          border-radius: 4px;
          border: 1px solid var(--panel-border-color, #ced4da);
          background: var(--panel-surface-color, #ffffff);
          color: var(--panel-on-surface-color, #212529);
        }
        """
    ]
