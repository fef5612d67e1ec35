"""Write the tiny benchmark fixtures: a few rows per benchmark in its lmms-lab column schema.

    python tests/data/make_fixtures.py

Images are 32x32 PNGs of one colour. Columns follow the lmms-lab datasets on the HF hub
(POPE, GQA testdev_balanced_instructions + testdev_balanced_images, MME, ScienceQA-IMG,
MMBench en dev, textvqa, VQAv2); GQA's nested ``annotations`` and ``semantic`` columns are
left out. Two rows are broken on purpose: a GQA question whose image id is not in the images
file, and a TextVQA row whose image bytes are not an image.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import datasets
from datasets import Features, Image, List, Value

HERE = Path(__file__).parent
S, I64 = Value("string"), Value("int64")


def png(rgb: tuple[int, int, int]) -> dict[str, Any]:
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.new("RGB", (32, 32), rgb).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


RED, GREEN, BLUE = png((200, 30, 30)), png((30, 200, 30)), png((30, 30, 200))


def write(name: str, rows: list[dict[str, Any]], features: dict[str, Any]) -> None:
    datasets.Dataset.from_list(rows, features=Features(features)).to_parquet(str(HERE / f"{name}.parquet"))


def pope() -> None:
    rows = [
        ("1", "Is there a dog in the image?", "yes", "random", RED),
        ("2", "Is there a cat in the image?", "no", "random", RED),
        ("3", "Is there a person in the image?", "yes", "adversarial", GREEN),
        ("4", "Is there a car in the image?", "no", "adversarial", GREEN),
    ]
    write(
        "pope",
        [
            {
                "id": str(i),
                "question_id": q,
                "question": t,
                "answer": a,
                "image_source": f"COCO_val2014_{q:0>12}",
                "image": im,
                "category": c,
            }
            for i, (q, t, a, c, im) in enumerate(rows)
        ],  # fmt: skip
        {"id": S, "question_id": S, "question": S, "answer": S, "image_source": S, "image": Image(), "category": S},
    )


def gqa() -> None:
    qs = [("201", "n1", "What color is the ball?", "red"), ("202", "n2", "Is it sunny?", "yes"),
          ("203", "n404", "What is on the table?", "cup")]  # fmt: skip
    write("gqa", [{"id": i, "imageId": im, "question": q, "answer": a, "fullAnswer": f"The answer is {a}.",
                   "isBalanced": True, "groups": {"global": None, "local": "10c-ball_color"}, "entailed": "",
                   "equivalent": i, "types": {"structural": "query", "semantic": "attr", "detailed": "color"},
                   "semanticStr": "select: ball->query: color"} for i, im, q, a in qs],  # fmt: skip
          {"id": S, "imageId": S, "question": S, "answer": S, "fullAnswer": S, "isBalanced": Value("bool"),
           "groups": {"global": S, "local": S}, "entailed": S, "equivalent": S,
           "types": {"structural": S, "semantic": S, "detailed": S}, "semanticStr": S})  # fmt: skip
    write("gqa_images", [{"id": "n1", "image": RED}, {"id": "n2", "image": BLUE}], {"id": S, "image": Image()})


def mme() -> None:
    rows = [
        ("existence/000000006040.jpg", "Is there a train in this image?", "Yes", "existence", RED),
        ("existence/000000006040.jpg", "Is there a bed in this image?", "No", "existence", RED),
        ("code_reasoning/0020.png", "The image shows a python code. Will the output be 3?", "Yes", "code_reasoning",
         BLUE),
        ("code_reasoning/0020.png", "The image shows a python code. Will the output be 4?", "No", "code_reasoning",
         BLUE),
    ]  # fmt: skip
    write(
        "mme",
        [
            {"question_id": q, "image": im, "question": t + " Please answer yes or no.", "answer": a, "category": c}
            for q, t, a, c, im in rows
        ],  # fmt: skip
        {"question_id": S, "image": Image(), "question": S, "answer": S, "category": S},
    )


def scienceqa_img() -> None:
    rows = [
        ("Which animal is a mammal?", ["frog", "dog"], 1, "Hint: look at the fur."),
        ("Which color is the square?", ["red", "green", "blue"], 0, ""),
    ]
    write("scienceqa_img", [{"image": RED, "question": q, "choices": c, "answer": a, "hint": h, "task": "closed choice",
                             "grade": "grade4", "subject": "natural science", "topic": "biology",
                             "category": "Classification", "skill": "Identify mammals", "lecture": "", "solution": ""}
                            for q, c, a, h in rows],  # fmt: skip
          {"image": Image(), "question": S, "choices": List(S), "answer": Value("int8"), "hint": S, "task": S,
           "grade": S, "subject": S, "topic": S, "category": S, "skill": S, "lecture": S, "solution": S})  # fmt: skip


def mmbench_en_dev() -> None:
    # index 7 and its CircularEval rotation 1000007 (options shifted by one), and a 3-option question
    rows = [
        (7, "What is the main color?", None, ["red", "green", "blue", "black"], "A"),
        (1000007, "What is the main color?", None, ["green", "blue", "black", "red"], "D"),
        (9, "Which shape is shown?", "The image shows one shape.", ["square", "circle", "star", None], "B"),
    ]
    write("mmbench_en_dev", [{"index": i, "question": q, "hint": h, "A": o[0], "B": o[1], "C": o[2], "D": o[3],
                              "answer": a, "category": "attribute_recognition", "image": RED, "source": "fixture",
                              "L2-category": "finegrained_perception (instance-level)", "comment": None,
                              "split": "dev"} for i, q, h, o, a in rows],  # fmt: skip
          {"index": I64, "question": S, "hint": S, "A": S, "B": S, "C": S, "D": S, "answer": S, "category": S,
           "image": Image(), "source": S, "L2-category": S, "comment": S, "split": S})  # fmt: skip


def textvqa_val() -> None:
    rows = [
        (34602, "what is written on the sign?", ["stop"] * 9 + ["stop sign"], GREEN),
        (34603, "what number is on the bus?", ["12"] * 6 + ["twelve"] * 4, {"bytes": b"not an image", "path": None}),
    ]
    write("textvqa_val", [{"image_id": f"img{q}", "question_id": q, "question": t, "question_tokens": t.split(),
                           "image": im, "image_width": 32, "image_height": 32, "flickr_original_url": "",
                           "flickr_300k_url": "", "answers": a, "image_classes": ["Sign"], "set_name": "val",
                           "ocr_tokens": ["stop"]} for q, t, a, im in rows],  # fmt: skip
          {"image_id": S, "question_id": I64, "question": S, "question_tokens": List(S), "image": Image(),
           "image_width": I64, "image_height": I64, "flickr_original_url": S, "flickr_300k_url": S,
           "answers": List(S), "image_classes": List(S), "set_name": S, "ocr_tokens": List(S)})  # fmt: skip


def vqav2_val() -> None:
    def answers(words: list[str]) -> list[dict[str, Any]]:
        return [{"answer": w, "answer_confidence": "yes", "answer_id": i + 1} for i, w in enumerate(words)]

    rows = [
        (262148000, "What color is the bus?", ["red"] * 10, "red", "other"),
        (262148001, "How many dogs are there?", ["2"] * 2 + ["two"] * 2 + ["3"] * 6, "3", "number"),
    ]
    write("vqav2_val", [{"question_type": "what", "multiple_choice_answer": m, "answers": answers(a),
                         "image_id": q // 1000, "answer_type": t, "question_id": q, "question": text, "image": BLUE}
                        for q, text, a, m, t in rows],  # fmt: skip
          {"question_type": S, "multiple_choice_answer": S,
           "answers": List({"answer": S, "answer_confidence": S, "answer_id": I64}), "image_id": I64,
           "answer_type": S, "question_id": I64, "question": S, "image": Image()})  # fmt: skip


if __name__ == "__main__":
    datasets.disable_progress_bars()
    for make in (pope, gqa, mme, scienceqa_img, mmbench_en_dev, textvqa_val, vqav2_val):
        make()
    print("\n".join(sorted(p.name for p in HERE.glob("*.parquet"))))
