"""Generated training corpus for the QA model: random results -> context facts -> many phrased questions."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from edgefx.qa.context import Fact, build_facts

REGIONS = ["forehead", "left_eyebrow", "right_eyebrow", "left_eye", "right_eye", "nose", "left_cheek",
           "right_cheek", "mouth", "chin"]
METHODS = ["single_removal", "greedy_removal", "single_aggregation", "greedy_aggregation", "average"]
LABELS = {"single_removal": "S-", "greedy_removal": "G-", "single_aggregation": "S+",
          "greedy_aggregation": "G+", "average": "Avg"}

PHOTO_WORDS = {
    "a": ["photo A", "the first photo", "image A", "the first image", "picture A", "the first picture", "photo 1",
          "the 1st photo", "image 1", "the first one", "A", "the first face", "first pic"],
    "b": ["photo B", "the second photo", "image B", "the second image", "picture B", "the second picture",
          "photo 2", "the 2nd photo", "image 2", "the second one", "B", "the second face", "second pic"],
}
METHOD_WORDS = {
    "single_removal": ["single removal", "S-", "the single removal method", "single-removal", "removing one region"],
    "greedy_removal": ["greedy removal", "G-", "the greedy removal method", "greedy-removal"],
    "single_aggregation": ["single aggregation", "S+", "the single aggregation method", "single-aggregation"],
    "greedy_aggregation": ["greedy aggregation", "G+", "the greedy aggregation method", "greedy-aggregation"],
    "average": ["the average", "Avg", "the average method", "averaged over methods", "average"],
}
REGION_WORDS = {
    "forehead": ["forehead", "the forehead", "brow area"],
    "left_eyebrow": ["left eyebrow", "the left eyebrow", "left brow"],
    "right_eyebrow": ["right eyebrow", "the right eyebrow", "right brow"],
    "left_eye": ["left eye", "the left eye", "my left eye"],
    "right_eye": ["right eye", "the right eye", "my right eye"],
    "nose": ["nose", "the nose", "my nose"],
    "left_cheek": ["left cheek", "the left cheek", "my left cheek"],
    "right_cheek": ["right cheek", "the right cheek", "my right cheek"],
    "mouth": ["mouth", "the mouth", "lips", "my mouth"],
    "chin": ["chin", "the chin", "jaw", "my chin"],
}

# Slots: {p} a photo, {m} a method, {r} a region. An intent without {p}/{m} means photo A / the average.
QUESTIONS: dict[str, list[str]] = {
    "decision": [
        "Is it a match?", "Did it match?", "What was the decision?", "Are these the same person?",
        "Is this the same person?", "did the faces match", "Was I recognised?", "Did I pass?", "Match or no match?",
        "Tell me the decision.", "What's the verdict?", "same person or not?", "Did the system say it's me?",
        "Is it the same guy in both photos?", "What did the system decide?", "Was the verification successful?",
        "Did verification pass or fail?", "Give me the result.", "were they matched", "Is the result positive?",
        "So is it a match or not", "Did it accept me?", "Do the two faces belong to one person?",
        "What's the outcome of the comparison?", "Are the two people identical?", "mach or no mach?",
        "Is it a mtach?", "Did the two photos match up?", "Result?", "Was the match accepted or rejected?",
        "Tell me if the faces are the same person", "is that me in both pictures", "Did the check succeed?",
        "Am I verified?", "decision please",
    ],
    "score": [
        "What is the score?", "What was the similarity score?", "How similar are the faces?", "Show me the score.",
        "what score did we get", "Similarity?", "Give me the similarity value.", "How high was the score?",
        "What's the cosine similarity?", "What number did the comparison give?", "Tell me the match score.",
        "How close are the two faces?", "score pls", "What similarity did the model compute?", "whats the scroe",
        "What is the similarity between the two faces?", "How much do the faces resemble each other?",
        "What was the face similarity?", "Report the score.", "What's the raw score?", "the score was?",
        "How similar did it find us?", "What value did the face comparison produce?", "Tell me the similarity.",
        "How well do the faces match, numerically?", "what is the simlarity score", "Print the score",
        "How strong was the similarity?", "What did the similarity come out at?", "Which score did the pair get?",
    ],
    "threshold": [
        "What is the threshold?", "What's the decision threshold?", "Which threshold was used?",
        "What's the cutoff?", "What score is needed to match?", "How high must the score be?",
        "What is the acceptance threshold?", "threshold?", "Tell me the threshold.", "What's the bar to pass?",
        "What's the minimum score for a match?", "Where is the cut-off?", "what is the treshold",
        "What limit does the score have to reach?", "What is the match threshold set to?",
        "Give me the threshold value.", "At what score does it accept?", "What's the decision boundary?",
        "What value separates match from no match?", "How much score do I need?", "thresh value pls",
        "Which cutoff does the system use?", "What's the pass mark?", "what's the threshhold",
        "Show the threshold.", "What is the minimum similarity required?", "What's the required score?",
        "Which score is the boundary?", "What was the threshold for this decision?", "tell me the cut off",
    ],
    "margin": [
        "How far is the score from the threshold?", "By how much did it miss?", "By how much did it pass?",
        "What's the margin?", "How close was it to the threshold?", "How much above the threshold is the score?",
        "How much below the threshold is the score?", "Was it close?", "What's the gap to the threshold?",
        "How big is the margin?", "By what margin?", "Difference between score and threshold?",
        "how far off was it", "How much was I short?", "How much did I clear the threshold by?",
        "Is the score above or below the threshold?", "how near the cutoff was it", "margin pls",
        "What's the distance between score and cutoff?", "Did it barely make it?", "Was it a close call?",
        "How much higher or lower than the threshold?", "score minus threshold?", "How much room was there?",
        "How much over the limit?", "How much under the limit?", "Compare the score with the threshold.",
        "whats the diference to the threshold", "How large was the gap?", "By how much did the score differ?",
    ],
    "why": [
        "Why is it a match?", "Why didn't it match?", "Why didn't it let me in?", "Why was I rejected?",
        "Why was I accepted?", "Why does it think we're the same person?", "Why different people?",
        "Why the decision?", "Explain the decision.", "Why did it fail?", "Why did it pass?", "why no match",
        "What's the reason for the decision?", "How did it decide?", "why did it say that", "Why not me?",
        "What caused the rejection?", "Why is this not a match?", "Explain why it matched.",
        "Why did verification fail?", "On what basis was the decision made?", "whyd it reject me",
        "Why did the system say these are different people?", "Why same person?", "How come it matched?",
        "How come it didn't match?", "What made it decide that?", "Reason?", "Justify the result.",
        "why was the match refused", "Why did it accept the pair?",
    ],
    "confidence": [
        "How confident is the system?", "What's the confidence?", "How sure is it?", "What is the PIC confidence?",
        "Confidence level?", "How certain is the decision?", "How reliable is this result?",
        "What's the probability it's right?", "How much can I trust this?", "confidence pls",
        "Tell me the confidence.", "How sure are you?", "What's the certainty?", "how confident was the model",
        "Give me the confidence score.", "What confidence did it report?", "Is it confident?",
        "How likely is the decision correct?", "What is the decision confidence?", "whats the confidance",
        "How trustworthy is the result?", "Show the PIC value.", "What's the PIC?", "How sure is the match?",
        "How certain is it that it's not me?", "what percentage confidence", "Confidence of the verdict?",
        "How much does the system believe its answer?", "What's the confidence percentage?",
        "How much confidence does it have in the decision?",
    ],
    "confidence_meaning": [
        "What does the confidence mean?", "What does PIC mean?", "How should I read the confidence?",
        "Explain the confidence value.", "What is PIC confidence?", "What does that percentage mean?",
        "How is the confidence interpreted?", "what does the PIC number tell me", "Meaning of the confidence?",
        "What does a confidence like this mean?", "Interpret the confidence for me.", "What is PIC?",
        "What is the PIC confidence measuring?", "What does the confidence represent?", "explain PIC",
        "How do I understand the confidence?", "What does the probability refer to?",
        "What is the confidence a probability of?", "Is the confidence a probability?", "what does pic stand for",
        "What does the confidence say about correctness?", "How is the confidence derived?",
        "What is the meaning of the PIC value?", "What does a high confidence mean here?",
        "Explain what the confidence number means.", "what dose the confidence mean",
        "How should the PIC be understood?", "Define the confidence.", "What's behind the confidence?",
        "What is being estimated by the confidence?",
    ],
    "top": [
        "What was the most important region in {p}?", "Which part of the face mattered most in {p}?",
        "What did it look at in {p}?", "Which region was most important for {m} in {p}?",
        "Top region in {p} according to {m}?", "Which facial area counted most in {p}?",
        "What did the model focus on in {p}?", "Most important feature in {p}?",
        "What region does {m} rank first in {p}?", "Which part mattered most?", "What did it look at?",
        "What was most important?", "What's the key region for {m}?", "Which area drove the decision in {p}?",
        "What part of my face was the most important?", "According to {m}, what's the top region in {p}?",
        "Which feature contributed most in {p}?", "Where did it look most in {p}?", "top region?",
        "Which region has the highest share in {p} for {m}?", "What part of the face was key in {p}?",
        "what mattered the most for {m}", "Which facial feature was most influential in {p}?",
        "Most relevant region in {p}?", "What is the number one region in {p}?", "whats the most imporant region",
        "Which region was ranked first in {p}?", "Which area of {p} was most decisive?",
        "Show me the most important part of {p}.", "What stands out most in {p} for {m}?",
        "Which region counts the most for {m} in {p}?", "What does {m} say matters most in {p}?",
    ],
    "second": [
        "What was the second most important region in {p}?", "Which region came second in {p}?",
        "What's ranked second for {m} in {p}?", "Second most important part of the face in {p}?",
        "After the top one, what mattered most in {p}?", "Which region is number two in {p}?",
        "What was the runner-up region in {p}?", "second region?", "What's the 2nd most important region?",
        "What came next after the most important region in {p}?", "Which area is second for {m}?",
        "Second-ranked feature in {p} according to {m}?", "Which part of the face was second in {p}?",
        "what was second most imporatnt", "Which region ranks just below the top in {p}?",
        "Tell me the second region for {m} in {p}.", "Which is the second biggest contributor in {p}?",
        "What's the next most important region in {p}?", "And the second most important one?",
        "Which feature came in second place in {p}?", "What's second on the list for {m}?",
        "Which region was rank 2 in {p}?", "What is the second key region in {p}?",
        "secnd most important area in {p}", "Which facial region has the second highest share in {p}?",
        "Name the second most relevant region in {p}.", "What mattered second most in {p}?",
        "Which part placed second for {m} in {p}?", "What's the second top region in {p}?",
        "which area is ranked 2nd in {p}",
    ],
    "least": [
        "What was the least important region in {p}?", "Which part of the face mattered least in {p}?",
        "What did it ignore in {p}?", "Least important region for {m} in {p}?",
        "Which region has the lowest share in {p}?", "What mattered least?", "Which area counted least in {p}?",
        "What's the least relevant feature in {p}?", "Which region is ranked last in {p}?",
        "What region did {m} rank last in {p}?", "Which part was least useful in {p}?", "least important?",
        "Which facial region contributed the least in {p}?", "What was the bottom region in {p}?",
        "What did the model care least about in {p}?", "whats the least imprtant part",
        "Which feature had the smallest influence in {p}?", "Which region was unimportant in {p}?",
        "Tell me the least important region for {m}.", "What is the weakest region in {p}?",
        "Which area had almost no effect in {p}?", "What region is at the bottom for {m} in {p}?",
        "Which part of my face didn't matter in {p}?", "Least relevant region according to {m}?",
        "Which region had the lowest importance in {p}?", "least useful area in {p}",
        "Which region matters the least in {p}?", "Which part was ranked lowest in {p}?",
        "What had the least weight in {p}?", "Which region came last for {m} in {p}?",
    ],
    "share": [
        "How important was the {r} in {p}?", "What share did the {r} get in {p}?", "How much did the {r} matter?",
        "Importance of the {r} in {p}?", "What percentage is the {r} in {p}?", "How much weight did the {r} get?",
        "Did the {r} matter in {p}?", "What's the {r}'s share?", "How relevant was the {r} in {p}?",
        "How much does the {r} contribute in {p}?", "{r} importance?", "How big a role did the {r} play in {p}?",
        "What is the average importance of the {r} in {p}?", "how much did my {r} count",
        "Tell me the importance of the {r} in {p}.", "What fraction of the importance went to the {r}?",
        "How significant was the {r} in {p}?", "What percent for the {r}?", "Was the {r} important in {p}?",
        "How much influence did the {r} have in {p}?", "what share does {r} have", "{r} share in {p}?",
        "How strongly did the {r} count in {p}?", "How much of the decision came from the {r} in {p}?",
        "Give me the {r} percentage in {p}.", "how importnat was the {r}", "What weight does the {r} carry in {p}?",
        "How much did the {r} contribute?", "Importance score of the {r}?", "What's the {r} worth in {p}?",
    ],
    "method": [
        "What does {m} mean?", "What is {m}?", "How does {m} work?", "Explain {m}.", "What's {m}?",
        "What does the {m} method do?", "Describe {m}.", "Can you explain what {m} is?", "{m}?",
        "What is the {m} technique?", "How is {m} computed?", "what does {m} do exactly",
        "Tell me about {m}.", "What's the idea behind {m}?", "Define {m}.", "How does the {m} method measure importance?",
        "what is {m} about", "What kind of method is {m}?", "Explain the {m} explanation method.",
        "What happens in {m}?", "How do you get the {m} map?", "In simple words, what is {m}?",
        "what does {m} stand for", "How is the {m} map made?", "Give me a description of {m}.",
        "What does the label {m} mean?", "Explian {m}", "What is meant by {m}?", "How does {m} decide importance?",
        "I don't understand {m}, what is it?",
    ],
    "agreement_top": [
        "Do the methods agree?", "How many methods agree on the top region in {p}?", "Is there agreement between methods?",
        "Do all methods pick the same region in {p}?", "How consistent are the methods in {p}?",
        "How many methods chose the same top region?", "Are the explanation methods in agreement for {p}?",
        "Do the methods agree on what matters most in {p}?", "how many methods agree",
        "How many of the methods vote for the top region in {p}?", "Is the top region the same across methods?",
        "Did the methods disagree in {p}?", "How much do the methods agree on the most important region?",
        "Do the different methods give the same answer in {p}?", "agreement between methods?",
        "How many votes did the top region get in {p}?", "Do they all agree?", "do the methods agre",
        "Consensus among methods in {p}?", "How unanimous are the methods in {p}?", "Are the methods consistent?",
        "How many methods name the same most important region in {p}?", "Is there a consensus on the top region?",
        "Do the methods concur in {p}?", "how many methods pick the same area", "Method agreement in {p}?",
        "Do the explanation techniques agree with each other?", "How many methods back the top region?",
        "Is the most important region agreed on by the methods in {p}?", "how much agreement is there",
    ],
    "agreement_tau": [
        "What is the Kendall tau in {p}?", "How well do the rankings agree in {p}?", "Kendall tau?",
        "What's the rank correlation between methods in {p}?", "How similar are the rankings of the methods?",
        "What is the ranking agreement in {p}?", "How correlated are the method rankings in {p}?",
        "Give me the Kendall tau for {p}.", "What's tau?", "rank agreement in {p}?",
        "How consistent are the region rankings in {p}?", "What is the rank agreement score?",
        "How much do the rankings of the regions agree in {p}?", "kendal tau value", "What's the tau for {p}?",
        "Tell me the Kendall's tau.", "How strongly do the rankings correlate?", "ranking correlation in {p}",
        "What is the agreement coefficient in {p}?", "How aligned are the rankings in {p}?",
        "What measure of agreement do the rankings have?", "What is the rank correlation?",
        "What's the Kendall coefficient in {p}?", "how similar are the region rankings across methods",
        "Ranking agreement value for {p}?", "Do the rankings match across methods in {p}?",
        "What's the tau between the methods?", "kendall tau for {p} pls", "Rank consistency in {p}?",
        "Are the rankings in {p} similar?",
    ],
    "face_size": [
        "How big is the face in {p}?", "What size is the face in {p}?", "How many pixels wide is the face in {p}?",
        "Face size in {p}?", "How large was my face in {p}?", "How wide is the face in {p}?",
        "What was the face width?", "How big was the face?", "size of the face in {p}", "How many pixels is the face?",
        "How large is the detected face in {p}?", "What's the face resolution in {p}?", "face size?",
        "How big did the detector find the face in {p}?", "Width of the face in {p}?", "how big is my face in {p}",
        "Was the face large enough in {p}?", "How many pixels across is the face in {p}?",
        "What's the size of the detected face?", "Tell me the face size in {p}.", "how wide was the face",
        "How big is the head in {p}?", "What size did the face have?", "How large was the face found in {p}?",
        "facesize in {p}", "What's the pixel size of the face in {p}?", "How big is the face box in {p}?",
        "How far across is the face in {p}?", "Face width in pixels?", "How wide is the detected face?",
    ],
    "face_score": [
        "How confident was the face detector in {p}?", "What's the detection score in {p}?",
        "How sure is the detector about the face in {p}?", "Detector confidence for {p}?",
        "How certain was the face detection in {p}?", "face detection score?", "What's the detector score?",
        "How confident is the face detection?", "How reliable was the detection in {p}?",
        "What detection confidence did the face in {p} get?", "How well was the face detected in {p}?",
        "detector confidence pls", "Was the face in {p} detected confidently?", "What is the MTCNN score in {p}?",
        "Tell me the detection confidence for {p}.", "how sure was it that {p} has a face",
        "Face detector certainty in {p}?", "What's the face score in {p}?", "How strong was the detection in {p}?",
        "What probability did the detector give the face in {p}?", "How good was the face detection in {p}?",
        "What is the detection confidence of the face in {p}?", "detecton score for {p}",
        "How confident was face detection?", "What did the detector score the face in {p}?",
        "How likely is it a face in {p}?", "Detector's confidence in {p}?", "What's the face confidence in {p}?",
        "How certain is it there's a face in {p}?", "Score of the face detector for {p}?",
    ],
    "other_faces": [
        "Were there other faces in {p}?", "How many other faces are in {p}?", "Is anyone else in {p}?",
        "Did it find more faces in {p}?", "How many faces were in {p}?", "Any other people in {p}?",
        "Was there more than one face in {p}?", "other faces in {p}?", "How many extra faces?",
        "Did the detector find other faces?", "Is there another person in {p}?", "Were other faces detected in {p}?",
        "How many additional faces in {p}?", "Anyone else in the picture?", "Are there multiple faces in {p}?",
        "was there anybody else in {p}", "How many other people were detected in {p}?",
        "Did {p} contain other faces?", "Is the face alone in {p}?", "any other faces", "Count of other faces in {p}?",
        "Were there extra people in {p}?", "How many more faces did it see in {p}?", "Other persons in {p}?",
        "Did it see other faces besides mine in {p}?", "Was I the only face in {p}?", "ohter faces in {p}?",
        "Were background faces found in {p}?", "How crowded is {p}?", "Number of other faces in {p}?",
    ],
    "recognizer": [
        "Which model was used?", "What face recognition model is this?", "Which recognizer?",
        "What model compares the faces?", "What's the recognition network?", "Which face model?",
        "What model did you use?", "Which neural network recognizes faces?", "name of the model?",
        "What face recognizer does it use?", "What is the recognition model?", "which recogniser is used",
        "What model computed the embeddings?", "Which embedding model?", "What model is behind this?",
        "Tell me the model name.", "What AI model did the comparison?", "Which network made the decision?",
        "What recognition model runs here?", "what model is it", "Which model produced the score?",
        "What's the face model called?", "What model extracts the face features?", "whcih model",
        "What kind of face recognition model is used?", "Which face matcher?", "What recognition engine?",
        "Name the face recognition network.", "What model does the verification?", "Which model compares faces?",
    ],
    "detector": [
        "Which face detector was used?", "What detects the faces?", "What's the detector?", "Which detector?",
        "What face detection model is used?", "How are faces found?", "What finds the face?",
        "Name of the face detector?", "Which model detects faces?", "what detector is it",
        "What does face detection?", "Which algorithm locates the faces?", "What's the detection model?",
        "Which detector found the faces?", "Tell me the face detector.", "What detection network?",
        "What is used to detect faces?", "face detector?", "How does it find faces?", "which detecter",
        "What model finds faces in the photo?", "Which face finder is used?", "What detection method?",
        "Which detector runs first?", "What locates the face?", "Name the detector.",
        "What model detects the face in the images?", "What's used for face detection?",
        "Which face detection algorithm?", "What spots the faces?",
    ],
    "backend": [
        "Which backend runs the models?", "What runtime is used?", "What inference engine?", "Which backend?",
        "Is it running on OpenVINO or onnxruntime?", "What does it run on?", "What device runs the model?",
        "What hardware is used?", "What precision does it run in?", "Is it int8 or fp32?", "which runtime",
        "What inference backend did it use?", "On what device did it run?", "What's the execution engine?",
        "Which framework runs inference?", "Is it on CPU or GPU?", "What runtime executes the network?",
        "backend?", "What's powering the inference?", "Which engine computes the results?",
        "What did the models run on?", "which backed is used", "Is it quantized?", "What precision is used?",
        "Which inference runtime?", "What software runs the models?", "Where does inference happen?",
        "What's the backend and device?", "Which accelerator?", "What compute device?",
    ],
    "time_total": [
        "How long did it take?", "How fast was it?", "What was the processing time?", "Total time?",
        "How many milliseconds did verification take?", "How long did the verification take?",
        "How quick was it?", "What's the latency?", "time taken?", "How long did the whole thing take?",
        "Total processing time?", "how long did it run", "What was the runtime?", "How much time did it need?",
        "How long was the verification?", "How many ms in total?", "whats the total time",
        "How long did the check take?", "Time for the verification?", "Overall duration?",
        "How fast did it decide?", "How long to verify?", "Elapsed time?", "Duration of the verification?",
        "How long did processing take in total?", "how lnog did it take", "What was the end-to-end time?",
        "Total latency?", "How long did I wait?", "How much time in total?",
    ],
    "time_step": [
        "How long did face detection take?", "How long did the embedding take?", "How long did alignment take?",
        "How long did decoding take?", "Detection time?", "Embedding time?", "Alignment time?",
        "How fast was detection?", "How many ms for the embeddings?", "How long did it take to detect the faces?",
        "How long to compute the embeddings?", "How long did decoding the images take?",
        "How long did the comparison take?", "How much time did detection need?", "detection latency",
        "Time spent on embedding?", "How quick was the alignment?", "Decoding time?", "how long did detect take",
        "How much time for face detection?", "How long did the face embeddings take?",
        "What was the detection time?", "What was the embedding time?", "How slow was detection?",
        "Time for alignment?", "How long was spent detecting faces?", "How long did the embedding step take?",
        "comparison time?", "How long did the decision step take?", "embeding time?",
    ],
    "time_explain": [
        "How long did the explanation take?", "How long did the heatmaps take?", "Explanation time?",
        "How long to compute the explanation?", "How much time did the saliency maps need?",
        "How long did explaining take?", "how long did the explanation maps take", "Heatmap computation time?",
        "How fast was the explanation?", "How long did the importance maps take?", "explanation latency?",
        "How many ms did the explanation take?", "How long to make the heatmaps?", "Time for the explanation?",
        "How long did the XAI part take?", "How long did the explainability take?", "time to explain?",
        "How slow was the explanation?", "How much time was spent on the explanation?", "how long for heatmaps",
        "Explanation duration?", "How long did the occlusion maps take?", "How long did the saliency take?",
        "explanaton time", "Time to compute the maps?", "How long did generating the explanation take?",
        "How long did all the methods take?", "How much time did explaining cost?", "heat map time?",
        "What was the explanation runtime?",
    ],
    "sides": [
        "Is left my left or the image's left?", "Whose left is left?", "Which side is left?",
        "Is the left eye my left eye?", "Left from whose point of view?", "Do left and right refer to me?",
        "Is left the viewer's left?", "Are left and right mirrored?", "what does left mean here",
        "Left as seen in the photo or my own left?", "How are left and right defined?",
        "Is the right eye the one on the right of the picture?", "Whose perspective are left and right?",
        "Is it my left or your left?", "Which left do you mean?", "Does left mean the subject's left?",
        "left meaning?", "Is the left cheek on the left of the image?", "Are sides from the subject's view?",
        "Which way round are left and right?", "Is left from the camera's view?", "whose rigth is right",
        "Left and right convention?", "Which eye is the left eye?", "Are the sides flipped?",
        "Is left the person's own left?", "How do you define left?", "Is the left side the image left?",
        "Does right mean my right?", "Is left measured from the viewer?",
    ],
}

# Intents whose fact key depends on which timing step / method is named.
TIME_STEPS = {
    "detect": ["detection", "detect", "detecting"], "embed": ["embedding", "embeddings", "embeding"],
    "align": ["alignment", "align"], "decode": ["decoding", "decode"], "decide": ["comparison", "decision step"],
}

UNANSWERABLE = [
    "What is my name?", "How old am I?", "What's the weather like?", "Is the person smiling?",
    "What color is my shirt?", "Where was the photo taken?", "What time is it?", "Who built this system?",
    "What's the accuracy on LFW?", "Am I wearing glasses?", "What is the person's gender?", "How tall am I?",
    "What's the password?", "Can you open the door?", "What's my ID number?", "When was the photo taken?",
    "What camera took the photo?", "Who is in the photo?", "What is the capital of France?", "Tell me a joke.",
    "How much does this device cost?", "What's the false match rate?", "What is the equal error rate?",
    "Is my hair long?", "What is the background colour?", "What's the GPU temperature?", "How many users are enrolled?",
    "Is the person wearing a mask?", "What ethnicity is the person?", "How much memory does it use?",
    "What is 2 plus 2?", "Who won the game yesterday?", "What's the lighting like?", "What emotion is shown?",
    "Did I blink?", "How many people passed today?", "What's the battery level?", "Which door is this?",
    "What's the version of the software?", "Is the photo a fake?", "Is this a deepfake?", "What is my email?",
    "How long will the door stay open?", "What's the training data?", "How many parameters does the model have?",
    "What language are you in?", "Can I try again?", "Where do I go now?", "who is the security guard",
    "what's the wifi password", "hello", "thanks", "what's up", "Is it going to rain?", "How do I reset my badge?",
    "What is the hair color?", "Is the person wearing a hat?", "What is the eye colour?", "What's the skin tone?",
    "Where is the exit?", "What's the image resolution in megapixels?", "Which country is this?",
    "how many photos are stored", "What's the person's mood?", "Is it daytime in the photo?",
    "What file format is the image?", "Who are you?", "When will my access expire?", "What's my score on the test?",
    "How many attempts do I have left?", "Is the lighting good enough?", "What's the noise level?",
    "What did I have for lunch?", "What's the temperature of the room?", "Can you call my manager?",
]
PREFIXES = ["", "", "", "", "hey, ", "ok so ", "quick question: ", "can you tell me ", "I'd like to know: ",
            "Please tell me: ", "so, ", "um, ", "hi! ", "Question: "]
SUFFIXES = ["", "", "", "", " please", " thanks", "??", " pls", "?", " ?"]


@dataclass(frozen=True)
class Example:
    """A QA training example: question, sub-context sentences, answer span (None = no answer)."""

    question: str
    sentences: tuple[str, ...]
    answer_sentence: int | None
    answer: str | None


def random_result(rng: random.Random) -> dict:
    """A plausible verification result with explanation; numbers random, shape as in docs/ARCHITECTURE.md."""
    threshold = rng.uniform(0.2, 0.5)
    match = rng.random() < 0.5
    score = rng.uniform(threshold, 0.95) if match else rng.uniform(-0.2, threshold)
    confidence = rng.choice([rng.uniform(0.5, 1.0), rng.uniform(0.95, 1.0), rng.uniform(0.99, 0.99999)])
    faces = []
    for image in ("a", "b"):
        faces.append({"image": image, "box": [0, 0, 1, 1], "landmarks": [[0, 0]] * 5,
                      "score": rng.uniform(0.8, 1.0), "size_px": rng.randint(40, 400),
                      "other_faces": rng.choice([0, 0, 0, 1, 2, 3])})
    timings = {k: round(rng.uniform(0.05, 60.0), rng.choice([1, 2])) for k in ("decode", "detect", "align", "embed",
                                                                               "decide")}
    timings["total"] = round(sum(timings.values()) + rng.uniform(0, 5), 1)
    model = {"recognizer": rng.choice(["sface", "sface", "arcface"]), "detector": rng.choice(["mtcnn", "yunet"]),
             "precision": rng.choice(["fp32", "int8"]), "backend": rng.choice(["openvino", "onnxruntime"]),
             "device": rng.choice(["CPU", "CPU", "GPU", "NPU"])}
    table = []
    agreement = {}
    for image in ("a", "b"):
        tops = []
        ranks_all = []
        for method in METHODS:
            weights = [rng.gammavariate(rng.choice([0.5, 1.0, 2.0]), 1.0) + 1e-6 for _ in REGIONS]
            total = sum(weights)
            shares = [100.0 * w / total for w in weights]
            order = sorted(range(len(REGIONS)), key=lambda i: -shares[i])
            ranks_all.append(order)
            for rank, i in enumerate(order, start=1):
                table.append({"method": method, "image": image, "region": REGIONS[i], "share": round(shares[i], 1),
                              "rank": rank})
            tops.append(REGIONS[order[0]])
        top = max(dict.fromkeys(tops), key=tops.count)  # first of the tied: a set would depend on PYTHONHASHSEED
        agreement[image] = {"top_region": top, "top_region_votes": tops.count(top),
                            "kendall_tau": round(rng.uniform(-0.2, 1.0), 2)}
    explanation = {"methods": METHODS, "labels": LABELS, "regions": REGIONS,
                   "sides": "left/right are the subject's own", "table": table, "agreement": agreement,
                   "heatmaps": {}, "summary": "", "passes": {m: rng.randint(10, 120) for m in METHODS[:4]},
                   "timings_ms": {m: round(rng.uniform(20, 900), 1) for m in METHODS[:4]}}
    result = {"match": match, "score": round(score, 4), "threshold": round(threshold, 4),
              "confidence": round(confidence, 5), "faces": faces, "timings_ms": timings, "model": model}
    if rng.random() < 0.9:
        result["explanation"] = explanation
    return result


def _typo(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not candidates:
        return text
    i = rng.choice(candidates)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    elif kind == 1:
        w = w[:j] + w[j + 1:]
    elif kind == 2:
        w = w[:j] + w[j] + w[j:]
    else:
        w = w[:j] + rng.choice("aeioustnrl") + w[j + 1:]
    words[i] = w
    return " ".join(words)


def _surface(rng: random.Random, question: str) -> str:
    q = question
    if rng.random() < 0.2:
        q = _typo(rng, q)
    if rng.random() < 0.25:
        q = q.lower()
    if rng.random() < 0.3:
        q = q.rstrip("?.!")
    q = rng.choice(PREFIXES) + (q[0].lower() + q[1:] if rng.random() < 0.5 else q) + rng.choice(SUFFIXES)
    return q.strip()


def _phrase(rng: random.Random, intent: str, template: str) -> tuple[str, str]:
    """Fill the template's slots and return (question, fact key it asks about)."""
    image = rng.choice("ab") if "{p}" in template else "a"
    method = rng.choice(METHODS) if "{m}" in template else "average"
    region = rng.choice(REGIONS)
    q = template.replace("{p}", rng.choice(PHOTO_WORDS[image])).replace("{m}", rng.choice(METHOD_WORDS[method]))
    words = REGION_WORDS[region]
    if "the {r}" in template:
        words = [w for w in words if not w.startswith(("the ", "my "))]
    q = q.replace("{r}", rng.choice(words))
    if intent in ("top", "second", "least"):
        return q, f"{intent}:{image}:{method}"
    if intent == "share":
        return q, f"share:{image}:{region}"
    if intent == "method":
        return q, f"method:{method}"
    if intent in ("agreement_top", "agreement_tau", "face_size", "face_score", "other_faces"):
        return q, f"{intent}:{image}"
    if intent == "time_total":
        return q, "time:total"
    if intent == "time_explain":
        return q, "time:explain"
    if intent == "time_step":
        lowered = q.lower()
        for step, words in TIME_STEPS.items():
            if any(w in lowered for w in words):
                return q, f"time:{step}"
        return q, "time:total"
    return q, intent


def _related(key: str, other: str) -> bool:
    a, b = key.split(":")[0], other.split(":")[0]
    groups = [{"top", "second", "least", "agreement_top"}, {"share"}, {"score", "threshold", "margin", "why"},
              {"confidence", "confidence_meaning"}, {"face_size", "face_score", "other_faces"},
              {"recognizer", "detector", "backend"}, {"time"}, {"method"}, {"agreement_tau", "agreement_top"}]
    return any(a in g and b in g for g in groups)


def _asked(seed: int, n_contexts: int, per_context: int,
           p_unanswerable: float) -> Iterator[tuple[random.Random, list[Fact], str, str | None]]:
    """`n_contexts` random results x `per_context` phrased questions: (rng, the result's facts, question, fact key)."""
    rng = random.Random(seed)
    intents = list(QUESTIONS)
    for _ in range(n_contexts):
        facts = build_facts(random_result(rng))
        for _ in range(per_context):
            question, key = _ask(rng, intents, p_unanswerable)
            yield rng, facts, question, key


def _ask(rng: random.Random, intents: list[str], p_unanswerable: float) -> tuple[str, str | None]:
    """A phrased question and the key of the fact it asks about (None: not answerable from any result)."""
    if rng.random() < p_unanswerable:
        return _surface(rng, rng.choice(UNANSWERABLE)), None
    intent = rng.choice(intents)
    question, key = _phrase(rng, intent, rng.choice(QUESTIONS[intent]))
    return _surface(rng, question), key


def _gold_and_siblings(rng: random.Random, facts: list[Fact], key: str | None,
                       n_hard: int) -> tuple[Fact | None, list[Fact], list[Fact]]:
    """The fact `key` names (if the result has it), up to `n_hard` close siblings (same kind of fact about another
    photo, method, rank or region) and the other facts."""
    gold = next((f for f in facts if f.key == key), None)
    others = [f for f in facts if f is not gold]
    hard = [f for f in others if key and _related(key, f.key)]
    siblings = rng.sample(hard, min(n_hard, len(hard)))
    return gold, siblings, [f for f in others if f not in siblings]


def generate_single(seed: int, n_contexts: int, per_context: int, n_hard: int = 2) -> list[Example]:
    """One-sentence examples for the per-sentence reader: per question the gold sentence (if any), `n_hard` close
    siblings and one other sentence, the last ones labelled no-answer."""
    examples: list[Example] = []
    for rng, facts, question, key in _asked(seed, n_contexts, per_context, 0.12):
        gold, siblings, rest = _gold_and_siblings(rng, facts, key, n_hard)
        negatives = siblings + rng.sample(rest, n_hard + 1 - len(siblings))
        if gold is not None:
            examples.append(Example(question, (gold.text,), 0, gold.answer))
        examples += [Example(question, (f.text,), None, None) for f in negatives]
    return examples
