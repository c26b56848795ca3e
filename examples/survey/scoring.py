"""The survey's own module: reads the shared weights and a party's answers, and computes the
weighted total of every party's secret answers (imported by survey.py from its bundle)."""
import csv


def read_weights(path):
    """The public weight of each question, in order, from the bundle's CSV file."""
    with open(path, newline="") as file:
        return [int(row["weight"]) for row in csv.DictReader(file)]


def read_answers(path, questions):
    """A party's private answers: one integer per line of its own file."""
    with open(path) as file:
        answers = [int(line) for line in file if line.strip()]
    if len(answers) != questions:
        raise SystemExit(f"{path}: {len(answers)} answers, the survey has {questions} questions")
    return answers


def default_answers(pid, questions):
    """Party i's answers when it names no file: i + 1, i + 2, ..."""
    return [pid + 1 + q for q in range(questions)]


def weighted_total(mpc, answers_per_party, weights):
    """The sum over parties and questions of weight times (secret) answer."""
    return mpc.sum([w * a for answers in answers_per_party for w, a in zip(weights, answers)])
