# ruff: noqa: E501 (the table of pairs reads best one pair per two lines)
"""Benchmark: preference tuning end to end on the bundled model, on CPU.

40 pairs teach one preference, "answer in one short sentence": the chosen reply is one
sentence, the rejected one the same sentence followed by two more. Then DPO or ORPO
(``training.finetune``), ``evaluate`` (preference accuracy, forgetting probe), and export
as a GGUF LoRA. 20 held-out questions (none in the training pairs) are answered greedily
by llama.cpp with the base alone (the baseline) and with the exported adapter; a reply
follows the preference when it is one sentence of at most 25 words. Prints one JSON line:
the fraction of held-out prompts following it, adapter vs base, and the forgetting probe.

    OMP_NUM_THREADS=1 .venv/bin/python bench/preference.py [--method orpo] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# (question, one short sentence, two more sentences the rejected reply adds)
TRAIN = [
    ("Why is the sky blue?", "Air scatters blue sunlight more than other colours.",
     "This effect is called Rayleigh scattering. It is also why sunsets look red and orange."),
    ("How do airplanes fly?", "Their wings push air down, which lifts the plane up.",
     "The engines provide thrust to keep air flowing over the wings. Pilots control the lift with flaps."),
    ("What is photosynthesis?", "It is how plants turn light, water and carbon dioxide into sugar.",
     "It happens in the chloroplasts of leaves. Oxygen is released as a by-product."),
    ("How does a refrigerator work?", "It pumps heat out of its inside using a circulating refrigerant.",
     "The refrigerant evaporates inside and condenses at the back. A compressor keeps it moving."),
    ("Why do we have seasons?", "Earth's tilted axis changes how directly sunlight hits each hemisphere.",
     "Summer comes when your hemisphere leans toward the sun. Distance from the sun matters very little."),
    ("What causes rain?", "Water vapour cools in clouds into drops heavy enough to fall.",
     "The water cycle starts with evaporation from seas and lakes. Mountains often force air up and cause rain."),
    ("How do vaccines work?", "They train the immune system to recognise a germ before infection.",
     "Most contain a harmless piece or copy of the germ. Memory cells then respond quickly later."),
    ("What is inflation?", "Inflation is the general rise of prices over time.",
     "Central banks try to keep it low and stable. High inflation erodes the value of savings."),
    ("How does the internet work?", "Computers exchange small packets of data through linked networks.",
     "Routers pass packets along toward their destination. Protocols such as TCP/IP set the rules."),
    ("Why do cats purr?", "Cats purr mostly to signal contentment or to soothe themselves.",
     "The sound comes from vibrating muscles in the larynx. Some cats also purr when hurt."),
    ("What is gravity?", "Gravity is the force that pulls masses toward each other.",
     "It keeps the planets in orbit around the sun. Einstein described it as curved spacetime."),
    ("How do magnets work?", "Aligned electron spins in the metal create a magnetic field.",
     "Opposite poles attract and like poles repel. Iron, nickel and cobalt are easy to magnetise."),
    ("What is a black hole?", "It is a region where gravity is so strong that not even light escapes.",
     "Most form when huge stars collapse. Their edge is called the event horizon."),
    ("Why is the ocean salty?", "Rivers carry dissolved minerals from rocks into the sea.",
     "Evaporation removes water but leaves the salt behind. Undersea vents add minerals too."),
    ("How does a battery work?", "Chemical reactions inside it push electrons through a circuit.",
     "Electrons flow from the negative terminal to the positive one. Recharging reverses the reaction."),
    ("What is democracy?", "Democracy is government by the people, usually through elected representatives.",
     "Citizens vote in free and fair elections. Rights and the rule of law protect minorities."),
    ("How do bees make honey?", "Bees turn flower nectar into honey by adding enzymes and evaporating water.",
     "They store it in wax cells of the hive. Fanning their wings helps dry the nectar."),
    ("Why do leaves change colour in autumn?", "Green chlorophyll breaks down and reveals yellow and red pigments.",
     "Shorter days signal trees to stop making chlorophyll. Cool nights make the reds brighter."),
    ("What is a computer program?", "It is a list of instructions that a computer follows.",
     "Programmers write them in languages such as Python. A compiler or interpreter runs them."),
    ("How does the heart work?", "It is a muscle that pumps blood through the body in a steady rhythm.",
     "It has four chambers and one-way valves. Electrical signals keep the beats in time."),
    ("What is climate change?", "It is the long-term warming of Earth caused mainly by greenhouse gases.",
     "Burning fossil fuels releases carbon dioxide. Effects include rising seas and extreme weather."),
    ("How do plants grow?", "Plants grow by making food from sunlight and adding new cells.",
     "Roots take up water and minerals from the soil. Growth happens at the tips of shoots and roots."),
    ("What is an atom?", "An atom is the smallest unit of a chemical element.",
     "It has a nucleus of protons and neutrons. Electrons move around the nucleus."),
    ("How does sound travel?", "Sound travels as vibrations passed from particle to particle.",
     "It moves faster in water than in air. It cannot travel through a vacuum."),
    ("Why do we sleep?", "Sleep lets the body and brain rest, repair and store memories.",
     "Adults need around seven to nine hours a night. Lack of sleep harms mood and focus."),
    ("What is a volcano?", "A volcano is an opening where molten rock escapes from inside the Earth.",
     "Many lie along the edges of tectonic plates. Eruptions can spread ash over wide areas."),
    ("How do fish breathe?", "Fish take oxygen from water with their gills.",
     "Water flows in through the mouth and out over the gills. Thin membranes pass oxygen into the blood."),
    ("What is electricity?", "Electricity is the flow of electric charge, usually electrons.",
     "It powers lights, motors and computers. It is measured in volts, amps and watts."),
    ("How does a rainbow form?", "Raindrops bend and reflect sunlight, splitting it into colours.",
     "You see one when the sun is behind you. The colours always appear in the same order."),
    ("What is money?", "Money is anything people accept in exchange for goods and services.",
     "It also stores value and measures prices. Today most money exists as bank records."),
    ("Why do birds migrate?", "Birds migrate to find food and good places to breed.",
     "Many fly south for the winter. They navigate using the sun, stars and Earth's magnetic field."),
    ("How do glasses help people see?", "Their lenses bend light so it focuses properly on the retina.",
     "Concave lenses help short-sighted people. Convex lenses help long-sighted people."),
    ("What is a galaxy?", "A galaxy is a huge system of stars, gas and dust held by gravity.",
     "Our galaxy is called the Milky Way. There are billions of galaxies in the universe."),
    ("How do earthquakes happen?", "Earthquakes happen when rocks along a fault suddenly slip.",
     "Stress builds up as tectonic plates move. The energy spreads out as seismic waves."),
    ("What is DNA?", "DNA is the molecule that carries the genetic instructions of living things.",
     "It has the shape of a double helix. Genes are sections of DNA."),
    ("How does a microwave oven heat food?", "Microwaves make water molecules in the food vibrate and heat up.",
     "The waves bounce around the metal box. Food with more water heats faster."),
    ("Why is exercise good for you?", "Exercise strengthens the heart, muscles and bones.",
     "It also improves mood and sleep. Adults should aim for about 150 minutes a week."),
    ("What is the moon made of?", "The moon is made mostly of rock similar to Earth's crust and mantle.",
     "Its surface is covered in dust called regolith. Astronauts brought back samples in the 1960s and 70s."),
    ("How do solar panels work?", "Solar cells turn sunlight directly into electricity.",
     "They are made of silicon layers. Light knocks electrons loose and creates a current."),
    ("What is a virus?", "A virus is a tiny germ that can only multiply inside living cells.",
     "It is much smaller than a bacterium. Antibiotics do not work against viruses."),
]  # fmt: skip
HELD_OUT = [
    "Why do stars twinkle?", "How does a car engine work?", "What is evolution?",
    "How do clouds form?", "Why do we need water?", "What is a rainforest?",
    "How does a telephone work?", "What is the stock market?", "Why do onions make you cry?",
    "How do submarines dive?", "What is recycling?", "How does the brain store memories?",
    "Why is the sun hot?", "What is a tornado?", "How do trains stay on the tracks?",
    "What is friction?", "How do spiders make webs?", "Why do we yawn?",
    "What is an eclipse?", "How does a compass work?",
]  # fmt: skip
MAX_WORDS = 25


def one_short_sentence(reply: str) -> bool:
    """Whether ``reply`` is one sentence of at most ``MAX_WORDS`` words."""
    text = reply.strip()
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    return bool(text) and len(sentences) == 1 and len(text.split()) <= MAX_WORDS


def pairs() -> list[Any]:
    """The 40 training pairs, each its own group."""
    from training.preferences import Pair

    return [
        Pair([{"role": "user", "content": q}], short, f"{short} {more}", "file", f"t{i}")
        for i, (q, short, more) in enumerate(TRAIN)
    ]


def replies(base_gguf: Path, adapter_gguf: Path | None, threads: int) -> list[str]:
    """Greedy llama.cpp answers to the held-out questions (with or without the adapter)."""
    from llama_cpp import Llama

    llm = Llama(
        model_path=str(base_gguf),
        lora_path=str(adapter_gguf) if adapter_gguf else None,
        n_ctx=1024,
        n_threads=threads,
        seed=0,
        verbose=False,
    )
    out = []
    for question in HELD_OUT:
        done: Any = llm.create_chat_completion(
            [{"role": "user", "content": question}], temperature=0.0, max_tokens=80
        )
        out.append(str(done["choices"][0]["message"]["content"]))
    llm.close()
    return out


def main() -> None:
    """Prepare, train, evaluate, export, and score held-out answers; print one JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", choices=["dpo", "orpo"], default="orpo")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--lr", type=float, help="Default: the method's (finetune --lr).")
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="LoRA init and data order.")
    parser.add_argument(
        "--threshold", type=float, help="Export's parity bars (export --threshold)."
    )
    parser.add_argument("--keep", help="Keep the work directory here (default: a temp one).")
    args = parser.parse_args()
    import torch

    from assistant.paths import data_dir
    from training.base import load_tokenizer, resolve_base
    from training.evaluate import evaluate
    from training.export import export
    from training.finetune import LEARNING_RATES, FinetuneConfig, finetune
    from training.preferences import prepare_preferences

    torch.set_num_threads(args.threads)
    # the dequantized base is cached once for every bench and run
    os.environ.setdefault("ASSISTANT_TRAINING_CACHE", str(data_dir() / "training" / "bases"))
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-preference-"))
    home = work / "home"
    base = resolve_base(None, home)
    started, cpu = time.monotonic(), time.process_time()
    tokenizer = load_tokenizer(base, home)
    data = prepare_preferences(pairs(), work / "data", tokenizer, base.as_dict(), val_fraction=0.1)
    lr = args.lr or LEARNING_RATES[args.method]
    config = FinetuneConfig(
        method=args.method, max_steps=args.steps, learning_rate=lr, beta=args.beta,
        save_steps=10_000, seed=args.seed,
    )  # fmt: skip
    run = finetune(work / "data", work / "run", base, home, config, progress=False)
    trained, train_cpu = time.monotonic(), time.process_time() - cpu
    evaluation = evaluate(work / "run", home, samples=2, new_tokens=32)
    exported = export(work / "run", "pref", home, threshold=args.threshold, register=False)
    base_replies = replies(base.path, None, args.threads)
    adapter_replies = replies(base.path, Path(exported["file"]), args.threads)
    follows = {
        "base": sum(map(one_short_sentence, base_replies)) / len(HELD_OUT),
        "adapter": sum(map(one_short_sentence, adapter_replies)) / len(HELD_OUT),
    }
    probe = evaluation["forgetting"]
    pref = evaluation["preference"]
    (work / "replies.json").write_text(
        json.dumps({"base": base_replies, "adapter": adapter_replies}, indent=2)
    )
    figures = {
        "bench": "preference",
        "method": args.method,
        "steps": run["metrics"]["steps"],
        "learning_rate": lr,
        "beta": args.beta,
        "seed": args.seed,
        "pairs": data["counts"]["train"],
        "held_out_pairs": data["counts"]["val"],
        "held_out_prompts": len(HELD_OUT),
        "s_per_step": round(run["metrics"]["runtime_s"] / max(run["metrics"]["steps"], 1), 2),
        # CPU seconds (prepare + train, one thread): steadier than wall time on a shared box
        "train_cpu_s": round(train_cpu),
        "follows_base": follows["base"],
        "follows_adapter": follows["adapter"],
        "pref_accuracy_base": pref["base"]["accuracy"],
        "pref_accuracy_adapter": pref["adapter"]["accuracy"],
        "reward_margin": round(pref["reward_margin"], 3),
        "general_ppl_base": round(probe["base"]["text_perplexity"], 3),
        "general_ppl_adapter": round(probe["adapter"]["text_perplexity"], 3),
        "knowledge_base": probe["base"]["knowledge"],
        "knowledge_adapter": probe["adapter"]["knowledge"],
        "forgetting_worse": probe["worse"],
        "parity_top1": round(exported["parity"]["top1"], 3),
        "train_s": round(trained - started),
        "total_s": round(time.monotonic() - started),
        "work": str(work),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
